// Worker-thread entry of ./evaluator-pool.ts. Loader hooks of the main thread
// (tsx) do not reach worker threads on Node 20, so the thread registers tsx
// itself before it loads the TypeScript task module.
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./evaluator-thread.worker.ts');

export const score = tasks.score;
export const check = tasks.check;
