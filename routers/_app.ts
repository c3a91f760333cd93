/** The whole API: every feature router, merged flat (procedure names are the OpenAPI operationIds). */
import { mergeRouters } from '../server/trpc.ts';
import { datasetRouter } from './datasets/dataset.router.ts';
import { evalRouter } from './evals/eval.router.ts';
import { evalRunRouter } from './eval-runs/eval-run.router.ts';
import { webhookRouter } from './webhooks/webhook.router.ts';

export const appRouter = mergeRouters(evalRunRouter, datasetRouter, evalRouter, webhookRouter);

export type AppRouter = typeof appRouter;
