/**
 * `Expect: 100-continue` on a pipelined request. Node's HTTP server (24.x) answers it by writing the interim
 * `100 Continue` into the new response's own buffer while an earlier response still holds the connection; when the
 * new response's head is then written before it gets the connection, the head is put in front of that buffer, and
 * the client reads `HTTP/1.1 100 Continue` as the first bytes of the body. Leaving the 100 out is no way round: Node
 * then closes the connection after the response, and the requests pipelined behind it go unanswered.
 *
 * So a request with `Expect: 100-continue` that arrives behind unfinished responses is handled once they have
 * finished: its 100 then goes straight onto the connection, before anything of its response. Its response's place in
 * the connection's order was taken when it arrived, so requests pipelined behind it are still answered after it.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/** Tracks each connection's unfinished responses on `server` and answers `checkContinue` as above. */
export function continueInOrder(server: Server): void {
  // each connection's responses that have not closed yet, in the order their requests came
  const open = new WeakMap<object, Set<ServerResponse>>()
  const track = (socket: object, res: ServerResponse): void => {
    let set = open.get(socket)
    if (set === undefined) {
      set = new Set()
      open.set(socket, set)
    }
    set.add(res)
    res.once('close', () => set.delete(res))
  }
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeContinue()
    server.emit('request', req, res)
  }
  // first among the listeners, so that every response is tracked before anything answers it
  server.prependListener('request', (req, res) => {
    if (!open.get(req.socket)?.has(res)) track(req.socket, res)
  })
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket
    const earlier = [...(open.get(socket) ?? [])]
    track(socket, res)
    if (earlier.length === 0) return handle(req, res)
    void Promise.all(earlier.map((r) => new Promise((ok) => r.once('close', ok)))).then(() => {
      // the connection went with the earlier responses: nothing of this one can reach the client
      if (socket.destroyed) res.destroy()
      else handle(req, res)
    })
  })
}
