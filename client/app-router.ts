/**
 * The router type the client is typed by. In the repository it is the
 * server's own (routers/_app.ts); in the published package (client/dist) this
 * file's declaration is replaced by a self-contained copy of the type, with no
 * reference to the server's files (scripts/build-client.ts).
 */
export type { AppRouter } from '../routers/_app.ts';
