/**
 * The daemon's log in its home: `daemon.log`, and the previous one in `daemon.log.1`. When `daemon.log` would grow
 * past {@link LOG_FILE_MAX_BYTES} it becomes `daemon.log.1` (replacing the older one) and a new file starts, so the
 * two never hold more than twice that. `warren logs` reads them. Writes are synchronous and a failed write is
 * dropped (reported once on stderr), so logging never stops the daemon.
 */
import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export const LOG_FILE_NAME = 'daemon.log'
export const LOG_FILE_MAX_BYTES = 1024 * 1024

/** `<home>/daemon.log`. */
export function logFilePath(homeDir: string): string {
  return join(homeDir, LOG_FILE_NAME)
}

export interface LogFile {
  readonly path: string
  write(text: string): void
  close(): void
}

/**
 * Opens (appends to) the log file; its directory must exist. A descriptor is given up the moment it is closed: after
 * a rotation that failed half-way (the home removed, no space, no descriptor left) the file is opened again at the
 * next line, and a closed descriptor's number, which the process may have handed to a socket since, is never written
 * to or closed again.
 */
export function openLogFile(path: string, maxBytes = LOG_FILE_MAX_BYTES): LogFile {
  let fd = openSync(path, 'a', 0o600)
  let size = fstatSync(fd).size
  let closed = false
  let failed = false
  const fail = (err: Error): void => {
    if (failed) return
    failed = true
    process.stderr.write(`warren: cannot write the log file ${path}: ${err.message}\n`)
  }
  const rotate = (): void => {
    const old = fd
    fd = -1
    closeSync(old)
    try {
      renameSync(path, `${path}.1`)
    } catch (err) {
      fail(err as Error) // the file goes on growing, to twice the size, before the next try
    }
    size = 0
  }
  return {
    path,
    write(text) {
      if (closed) return
      try {
        const bytes = Buffer.from(text, 'utf8')
        if (fd >= 0 && size > 0 && size + bytes.length > maxBytes) rotate()
        if (fd < 0) {
          fd = openSync(path, 'a', 0o600)
          failed = false
        }
        writeSync(fd, bytes)
        size += bytes.length
      } catch (err) {
        fail(err as Error)
      }
    },
    close() {
      closed = true
      if (fd >= 0) closeSync(fd)
      fd = -1
    },
  }
}
