/** The whole API: every feature router, merged flat (procedure names are the OpenAPI operationIds). */
import { mergeRouters } from '../server/trpc.ts';
import { evalRunRouter } from './eval-runs/eval-run.router.ts';

export const appRouter = mergeRouters(evalRunRouter);

export type AppRouter = typeof appRouter;
