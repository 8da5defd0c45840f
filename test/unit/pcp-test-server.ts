/**
 * A PCP server (RFC 6887) on a real loopback UDP socket for the port-mapping tests: grants MAP requests (external port
 * = internal + 10000 on 203.0.113.7, lifetime at most `maxLifetimeS`), refuses them all (`refuse`), or stays silent.
 */
import { createSocket, type Socket } from 'node:dgram'

/** A PCP server for one client: grants what is asked (at most `maxLifetimeS`), or refuses everything. */
export class TestPcpServer {
  readonly socket: Socket = createSocket('udp4')
  readonly mappings = new Map<string, number>()
  started = Date.now()
  refuse = false
  silent = false
  maxLifetimeS = 3600
  maps = 0

  async listen(): Promise<number> {
    this.socket.on('message', (msg, rinfo) => this.#answer(msg, rinfo.address, rinfo.port))
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()))
    return this.socket.address().port
  }

  restart(): void {
    this.mappings.clear()
    this.started = Date.now()
  }

  #answer(msg: Buffer, host: string, port: number): void {
    if (this.silent) return
    const opcode = msg[1]! & 0x7f
    const out = Buffer.alloc(opcode === 1 ? 60 : 24)
    out[0] = 2
    out[1] = 0x80 | opcode
    out.writeUInt32BE(Math.floor((Date.now() - this.started) / 1000), 8)
    if (opcode === 1) {
      this.maps++
      msg.copy(out, 24, 24, 60)
      const key = `${msg[36]}/${msg.readUInt16BE(40)}`
      const lifetime = Math.min(msg.readUInt32BE(4), this.maxLifetimeS)
      if (this.refuse) out[3] = 2
      else if (lifetime === 0) this.mappings.delete(key)
      else {
        this.mappings.set(key, msg.readUInt16BE(40) + 10_000)
        out.writeUInt32BE(lifetime, 4)
        out.writeUInt16BE(msg.readUInt16BE(40) + 10_000, 42)
        out.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7], 44)
      }
    }
    this.socket.send(out, port, host)
  }
}
