/**
 * The HTTP side of `mergelab serve`: Node's own `http` module (three JSON routes need no
 * framework, and closing the listener and in-flight requests on SIGTERM stays in our hands).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, chatRequest, completionRequest, parseBody } from './protocol.js';
import type { ServeEngine } from './engine.js';

const MAX_BODY = 16 << 20;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
}

export interface Listening {
  server: Server;
  url: string;
  port: number;
  /** Stops accepting, waits for in-flight requests up to `graceMs`, then drops the rest. */
  close(graceMs?: number): Promise<void>;
}

export function createApp(engine: ServeEngine, log: (line: string) => void = () => {}): Server {
  return createServer((req, res) => {
    const t0 = performance.now();
    const url = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const route = async (): Promise<[number, unknown]> => {
      if (url === '/v1/models' || url === '/health') {
        if (req.method !== 'GET') throw new ApiError(405, `${req.method} ${url}: use GET`);
        return [200, url === '/health' ? {} : engine.listModels()];
      }
      if (url === '/v1/completions' || url === '/v1/chat/completions') {
        if (req.method !== 'POST') throw new ApiError(405, `${req.method} ${url}: use POST`);
        const body = await readJson(req);
        return [200, url === '/v1/completions' ? await engine.completions(parseBody(completionRequest, body)) : await engine.chat(parseBody(chatRequest, body))];
      }
      throw new ApiError(404, `no route ${req.method} ${url} (routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions)`, 'invalid_request_error', null, 'not_found');
    };
    route()
      .then(([status, body]) => send(res, status, body))
      .catch((e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error');
        send(res, err.status, err.body());
      })
      .finally(() => log(`${req.method} ${url} ${res.statusCode} ${(performance.now() - t0).toFixed(0)} ms`));
  });
}

export async function listen(server: Server, port: number, host: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    port: addr.port,
    url: `http://${shownHost}:${addr.port}`,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
