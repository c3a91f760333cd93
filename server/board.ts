/**
 * bull-board at /admin/queues: every evalgate queue, for ops, behind HTTP
 * Basic admin credentials (EVALGATE_BOARD_USER / EVALGATE_BOARD_PASSWORD).
 * Without credentials it is not mounted at all, so the path 404s like any
 * unknown one.
 */
import type { FastifyInstance } from 'fastify';
import { sameSecret } from './auth.ts';
import type { Container } from './container.ts';
import { errorBody, noRouteMessage, safeMessage } from './errors.ts';

export const BOARD_PATH = '/admin/queues';

export async function registerBoard(app: FastifyInstance, container: Container): Promise<void> {
  const { EVALGATE_BOARD_USER: user, EVALGATE_BOARD_PASSWORD: password, EVALGATE_BOARD_READONLY: readOnlyMode } = container.env;
  if (!user || !password) return;

  // Loaded only when the board is mounted, so an API process without one does not pay bull-board's heap and RSS.
  const [{ createBullBoard }, { BullMQAdapter }, { FastifyAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/fastify'),
  ]);
  const serverAdapter = new FastifyAdapter().setBasePath(BOARD_PATH);
  createBullBoard({
    queues: container.queues.all().map((q) => new BullMQAdapter(q, { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'evalgate' } },
  });
  // bull-board's own handler adds the stack when NODE_ENV=development (our default); keep its body shape, drop the stack.
  serverAdapter.setErrorHandler((err: Error & { statusCode?: number }) => {
    const status = err.statusCode === 400 || err.statusCode === 404 ? err.statusCode : 500;
    if (status === 500) container.log.error({ err }, 'board request failed');
    return { status, body: { error: { key: 'ERRORS.INTERNAL_SERVER_ERROR' }, message: safeMessage(status, err.message) } };
  });

  await app.register(
    async (board) => {
      board.addHook('onRequest', async (req, reply) => {
        if (basicAuthMatches(req.headers.authorization, user, password)) return;
        return reply
          .status(401)
          .header('www-authenticate', 'Basic realm="evalgate board", charset="UTF-8"')
          .send(errorBody('the board needs admin credentials (HTTP Basic)'));
      });
      await board.register(serverAdapter.registerPlugin());
      // Without this, an unknown path under the board would fall to the REST catch-all and skip the credentials check.
      board.all('/*', async (req, reply) => reply.status(404).send(errorBody(noRouteMessage(req.method, req.url))));
    },
    { prefix: BOARD_PATH },
  );
}

function basicAuthMatches(header: string | undefined, user: string, password: string): boolean {
  const encoded = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '')?.[1];
  const decoded = encoded ? Buffer.from(encoded, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  // Both comparisons always run: which half was wrong must not show in the timing either.
  const userOk = sameSecret(colon < 0 ? '' : decoded.slice(0, colon), user);
  const passwordOk = sameSecret(colon < 0 ? '' : decoded.slice(colon + 1), password);
  return colon >= 0 && userOk && passwordOk;
}
