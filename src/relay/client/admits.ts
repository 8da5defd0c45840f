/**
 * Keeps this node's relays told whom the node admits (`/warren/relay/admits/1.0.0`, src/relay/admits.ts): the node
 * ids its `peers` and services' allow lists name, and whether a service is public. A relay that has this node on
 * its allow list then relays circuits from those nodes (a browser above all, which has no direct path) without the
 * limits it sets for strangers, and keeps bounding everyone else's circuits to this node.
 *
 * The declaration goes to each configured relay once it is connected and identified as speaking the protocol, again
 * when this node's addresses change (a reservation made: a token may have just admitted this node), and again when
 * the services or `peers` change (a reload, `warren expose`, an admitted browser). A relay gets it only when it
 * differs from the one it last accepted.
 */
import type { IdentifyResult, Libp2p, PeerId } from '@libp2p/interface'
import type { Startable } from '../../lifecycle.ts'
import type { Logger } from '../../log.ts'
import type { ServiceRegistry } from '../../services/registry.ts'
import { type AdmitsDeclaration, declareAdmits, MAX_ADMITS, RELAY_ADMITS_PROTOCOL } from '../admits.ts'
import { parseRelayAddr } from './relay-entries.ts'

export class RelayAdmits implements Startable {
  readonly #libp2p: Libp2p
  readonly #registry: ServiceRegistry
  readonly #relays: Map<string, PeerId>
  readonly #log: Logger
  /** Relay id → the declaration (JSON) it last accepted. */
  readonly #accepted = new Map<string, string>()
  /** Relays identified as speaking the protocol. */
  readonly #speaks = new Set<string>()
  #scheduled = false
  #unwatch: (() => void) | undefined
  #sending: Promise<void> = Promise.resolve()
  #warnedTooMany = false

  constructor(libp2p: Libp2p, registry: ServiceRegistry, relays: readonly string[], log: Logger) {
    this.#libp2p = libp2p
    this.#registry = registry
    this.#log = log
    this.#relays = new Map(
      relays.map((r) => {
        const { id } = parseRelayAddr(r)
        return [id.toString(), id]
      }),
    )
  }

  async start(): Promise<void> {
    const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
      const id = evt.detail.peerId.toString()
      if (!this.#relays.has(id)) return
      if (evt.detail.protocols.includes(RELAY_ADMITS_PROTOCOL)) this.#speaks.add(id)
      this.#accepted.delete(id) // a new connection: the relay may have forgotten the declaration
      this.#soon()
    }
    const onUpdate = (): void => this.#soon()
    const onDisconnect = (evt: CustomEvent<PeerId>): void => {
      this.#accepted.delete(evt.detail.toString())
    }
    this.#libp2p.addEventListener('peer:identify', onIdentify)
    this.#libp2p.addEventListener('self:peer:update', onUpdate)
    this.#libp2p.addEventListener('peer:disconnect', onDisconnect)
    const unsubscribe = this.#registry.onChange(() => this.#soon())
    this.#unwatch = () => {
      this.#libp2p.removeEventListener('peer:identify', onIdentify)
      this.#libp2p.removeEventListener('self:peer:update', onUpdate)
      this.#libp2p.removeEventListener('peer:disconnect', onDisconnect)
      unsubscribe()
    }
    this.#soon()
  }

  async stop(): Promise<void> {
    this.#unwatch?.()
    this.#unwatch = undefined
    await this.#sending
  }

  /** The declaration this node makes now. */
  declaration(): AdmitsDeclaration {
    const { any, ids } = this.#registry.admitted()
    if (ids.length > MAX_ADMITS && !this.#warnedTooMany) {
      this.#warnedTooMany = true
      this.#log(
        'warn',
        `peers and allow lists name ${ids.length} nodes; relays are told the first ${MAX_ADMITS}: circuits from the others are bounded like strangers'`,
      )
    }
    return { any, ids: ids.slice(0, MAX_ADMITS) }
  }

  /**
   * Sends the current declaration to every relay that does not have it yet; resolves when they answered. The
   * changes of one reload (made in one go) go out as one declaration, before an answer to the request that caused
   * them (e.g. an invite redeemed) can reach the relay on the same connection.
   */
  flush(): Promise<void> {
    this.#sending = this.#sending.then(() => this.#sendAll())
    return this.#sending
  }

  #soon(): void {
    if (this.#unwatch === undefined || this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(() => {
      this.#scheduled = false
      void this.flush()
    })
  }

  async #sendAll(): Promise<void> {
    const declaration = this.declaration()
    const json = JSON.stringify(declaration)
    await Promise.all(
      [...this.#relays].map(async ([key, id]) => {
        if (!this.#speaks.has(key) || this.#accepted.get(key) === json) return
        if (this.#libp2p.getConnections(id).every((c) => c.status !== 'open' || c.limits !== undefined)) return
        try {
          const answer = await declareAdmits(this.#libp2p, id, declaration)
          if (answer.accepted) {
            this.#accepted.set(key, json)
            this.#log(
              'debug',
              `relay ${key} knows the ${declaration.any ? 'public services and ' : ''}${answer.ids} node(s) this node admits`,
            )
          } else {
            this.#accepted.delete(key)
            this.#log('debug', `relay ${key} bounds every circuit to this node like a stranger's: ${answer.reason}`)
          }
        } catch (err) {
          this.#log('debug', `could not tell relay ${key} whom this node admits: ${(err as Error).message}`)
        }
      }),
    )
  }
}
