/**
 * Generated from openapi.json by openapi-typescript (scripts/client-openapi-types.ts):
 * do not edit; `npm run build:client` rewrites it.
 */
export interface paths {
    "/v1/datasets/{id}/runs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List a dataset's eval runs, newest first */
        get: operations["listEvalRuns"];
        put?: never;
        /**
         * Schedule an eval run against a dataset version
         * @description Send an `Idempotency-Key` header to make retries safe: the same key with the same body answers the same run (same 202 body) for 24 h; with another body 422; while the first request is still in flight 409.
         */
        post: operations["scheduleEvalRun"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/compare": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Compare two runs item by item
         * @description Items scored in both runs, in item order, with each score and the change; the summary counts every such item.
         */
        get: operations["compareEvalRuns"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}/items": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List a run's results with their items, in item order */
        get: operations["listEvalRunItems"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get an eval run with its status and counters */
        get: operations["getEvalRun"];
        put?: never;
        post?: never;
        /**
         * Delete an eval run with its results (owners only)
         * @description Answered at once with 202 `{id, status: "deleting"}`: from then on the run is gone for every read (404), and its results, samples and chunks are deleted in the background in bounded batches. A pending or running run is refused with 409 (cancel it first), as is a run whose samples an active run re-scores. Deleting a run still being deleted answers 202 again.
         */
        delete: operations["deleteEvalRun"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}/gate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Apply a pass/fail policy to a run, against a baseline when given
         * @description Answers `passed` or `failed` with the reasons, one entry per check; `pending` while the run has not ended (ask again). The baseline is a run id, or the latest completed run of the same dataset with a name and/or metadata; checks that need one are `skipped` when none is found.
         */
        post: operations["gateEvalRun"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}/cancel": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Cancel a pending or running eval run
         * @description The run ends `failed` with `error_message: "canceled"` (the status enum has no canceled state). Queued chunks become no-ops; a chunk already being scored records nothing.
         */
        post: operations["cancelEvalRun"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Re-evaluate the error items of a finished eval run
         * @description Deletes the run's `error` results, takes exactly them off the counters and scores those items again; passed and failed results are kept. Items a canceled run never scored are scored too.
         */
        post: operations["retryEvalRun"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/datasets": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List datasets, newest first */
        get: operations["listDatasets"];
        put?: never;
        /** Create a dataset (version 1, no items) */
        post: operations["createDataset"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/datasets/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a dataset */
        get: operations["getDataset"];
        put?: never;
        post?: never;
        /**
         * Delete a dataset with its versions, items, runs and results (owners only)
         * @description Refused with 409 while one of its runs is pending or running. Answered at once: the dataset and its runs are gone for every read from then on; its items and its runs' results are deleted in the background, in bounded batches.
         */
        delete: operations["deleteDataset"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/datasets/{id}/items": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the items of a version (default: the latest), in insertion order */
        get: operations["listDatasetItems"];
        put?: never;
        /**
         * Add items: a new version holding the previous items plus these
         * @description At most MAX_ITEMS_PER_REQUEST items (10,000) of MAX_ITEM_BYTES (1 MiB) each, else 413; use `POST /v1/datasets/{id}/items/upload` (NDJSON) for more.
         */
        post: operations["addDatasetItems"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/datasets/{id}/items/delete": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Delete items: a new version without them
         * @description Every id must be an item of the latest version (404 names the others). Older versions, and runs pinned to them, keep the items.
         */
        post: operations["deleteDatasetItems"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/datasets/{id}/versions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List a dataset's versions, newest first */
        get: operations["listDatasetVersions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/evals": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List evals with their latest version, newest first */
        get: operations["listEvals"];
        put?: never;
        /** Create an eval with its first version */
        post: operations["createEval"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/evals/{id}/versions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Add a version to an eval (earlier versions stay as they are) */
        post: operations["createEvalVersion"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/evals/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get an eval with its latest version */
        get: operations["getEval"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's webhooks, newest first (owners only; secrets are never shown again) */
        get: operations["listWebhooks"];
        put?: never;
        /**
         * Register a URL to be told when a run ends (owners only)
         * @description Every run of the tenant that ends is POSTed as `{"type": "eval_run.completed" | "eval_run.failed", "run": EvalRun}`, signed in `Evalgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`. The `secret` is in this answer only. Non-2xx answers and timeouts are retried with exponential backoff (a `Retry-After` is honoured); redirects are not followed.
         */
        post: operations["createWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Delete a webhook with its delivery history (owners only); queued deliveries are dropped */
        delete: operations["deleteWebhook"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/datasets/{id}/items/upload": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Upload items as NDJSON: a new version holding the previous items plus these
         * @description One `NewDatasetItem` JSON object per line (Content-Type: application/x-ndjson). The body is streamed and stored in one transaction: if any line is bad, nothing is stored and the 400 names the bad lines by number. Each line may be up to MAX_ITEM_BYTES (1 MiB).
         */
        post: operations["uploadDatasetItems"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Follow a run as Server-Sent Events until it ends
         * @description An `event: progress` with the `EvalRun` as `data` on connect and whenever the run changes, then one `event: done` with the completed or failed run, and the stream ends. `: ping` comments every 15 s. The same stream is the tRPC subscription `watchEvalRun` (httpSubscriptionLink). Any role may watch.
         */
        get: operations["watchEvalRunEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/{id}/items/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Export a run's results with their items, streamed, as JSON Lines or CSV
         * @description Every result in item order, the fields of `EvalRunItem`: one JSON object per line (`format=jsonl`, the default), or RFC 4180 CSV with a header row and the item's input, output and expected_output as JSON text in their cells. Memory on the server is one page whatever the run's size. Any role; at most 4 exports per tenant at once (429).
         */
        get: operations["exportEvalRunItems"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/eval-runs/compare/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Export two runs compared item by item, streamed, as JSON Lines or CSV
         * @description Every item both runs scored, in item order: item_id, base_status, head_status, base_score, head_score, delta, change (the rows of compareEvalRuns, without paging). Memory on the server is one page whatever the runs' size. Any role; counts against the same 4 exports per tenant (429).
         */
        get: operations["exportEvalRunComparison"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Target: {
            /** @constant */
            type: "dataset_output";
        } | {
            /** @constant */
            type: "chat_completion";
            /** @description A provider configured in EVALGATE_PROVIDERS (the judge's registry; one shared budget per provider) */
            provider: string;
            model: string;
            /** @description The request's messages, rendered per item */
            messages?: {
                /** @enum {string} */
                role: "system" | "user" | "assistant" | "developer";
                /** @description Template over {{input}}, {{input.<path>}}, {{expected_output}} and {{metadata.<path>}}; JSON values are rendered as JSON */
                content: string;
            }[];
            /**
             * @description Send each item's input as the messages (it must be an array of {role, content})
             * @constant
             */
            messages_from?: "input";
            params?: {
                temperature?: number;
                top_p?: number;
                max_tokens?: number;
                max_completion_tokens?: number;
                seed?: number;
                stop?: string | string[];
                presence_penalty?: number;
                frequency_penalty?: number;
                response_format?: {
                    /** @enum {string} */
                    type: "text" | "json_object";
                } | {
                    /** @constant */
                    type: "json_schema";
                    json_schema: {
                        name: string;
                        schema: {
                            [key: string]: unknown;
                        };
                        strict?: boolean;
                        description?: string;
                    };
                };
            };
            /**
             * @description json: the answer is parsed, and an unparsable one is retried, then the item's error
             * @default text
             * @enum {string}
             */
            output: "text" | "json";
        } | {
            /** @constant */
            type: "http";
            /** @description An endpoint configured in EVALGATE_TARGETS (URL, method, headers and credentials live there) */
            endpoint: string;
            /** @description The JSON body, rendered per item: strings are templates; "{{input}}" alone is replaced by the JSON value itself */
            body: {
                [key: string]: unknown;
            } | unknown[] | string;
            /** @description Where the output is in the JSON answer; the whole answer when omitted */
            output_path?: string;
        };
        GatePolicy: {
            /** @description Least share of scored items that must pass (0–1) */
            min_pass_rate?: number;
            /** @description Least pass rate of each criterion (a number: every criterion; an object: the criteria it names) of a run with several criteria; errors count as errors_as_failures says */
            min_criterion_pass_rate?: number | {
                [key: string]: number;
            };
            /** @description Most items that may end in error */
            max_errors?: number;
            /** @description Most items whose score went down against the baseline */
            max_regressions?: number;
            /** @description No item that passed in the baseline may fail in this run */
            no_new_failures?: boolean;
            /** @description Fail only when the run is significantly worse than the baseline (compareEvalRuns' verdict "worse" at alpha): chance differences pass */
            no_significant_regression?: boolean;
            /**
             * @description Significance level of no_significant_regression (default 0.05)
             * @default 0.05
             */
            alpha: number;
            /**
             * @description Count error items as failures in the pass rate and as new failures (default true); false leaves them out
             * @default true
             */
            errors_as_failures: boolean;
        };
        GateBaseline: {
            /**
             * Format: uuid
             * @description This run is the baseline
             */
            run_id?: string;
            /** @description The latest completed run of the same dataset with this name is the baseline */
            name?: string;
            /** @description … whose metadata contains this object */
            metadata?: {
                [key: string]: unknown;
            };
        };
        NewDatasetItem: {
            /** @description input: any JSON value */
            input: unknown;
            /** @description Any JSON value; what a correct output is */
            expected_output?: unknown;
            /** @description Any JSON value; the output to score */
            output?: unknown;
            /** @description A JSON object, available to evaluators */
            metadata?: {
                [key: string]: unknown;
            };
        };
        Evaluator: components["schemas"]["EvaluatorConfig"] | components["schemas"]["CriteriaEvaluator"];
        EvaluatorConfig: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "EvaluatorConfig";
        } & ({
            /** @constant */
            type: "exact_match";
            /** @default 1 */
            threshold: number;
            value?: unknown;
            /** @default true */
            trim: boolean;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "contains";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "icontains";
            /** @default 1 */
            threshold: number;
            value?: string;
        } | {
            /** @constant */
            type: "not_contains";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "starts_with";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "ends_with";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "contains_any";
            /** @default 1 */
            threshold: number;
            values: string[];
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "contains_all";
            /** @default 1 */
            threshold: number;
            values: string[];
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "regex";
            /** @default 1 */
            threshold: number;
            pattern: string;
            /** @default  */
            flags: string;
        } | {
            /** @constant */
            type: "is_json";
            /** @default 1 */
            threshold: number;
        } | {
            /** @constant */
            type: "json_schema";
            /** @default 1 */
            threshold: number;
            schema: {
                [key: string]: unknown;
            };
        } | {
            /** @constant */
            type: "json_match";
            /** @default 1 */
            threshold: number;
            value?: unknown;
            paths: string[];
        } | {
            /** @constant */
            type: "levenshtein";
            /** @default 0.5 */
            threshold: number;
            value?: string;
            /** @default true */
            trim: boolean;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "numeric_diff";
            /** @default 1 */
            threshold: number;
            value?: number | string;
            /** @default 0 */
            tolerance: number;
            /** @default false */
            relative: boolean;
        } | {
            /** @constant */
            type: "token_f1";
            /** @default 0.5 */
            threshold: number;
            value?: string;
        } | {
            /** @constant */
            type: "rouge_l";
            /** @default 0.75 */
            threshold: number;
            value?: string;
        } | {
            /** @constant */
            type: "llm_judge";
            /** @description Name of a provider configured in EVALGATE_PROVIDERS */
            provider: string;
            model: string;
            messages: {
                /** @enum {string} */
                role: "system" | "user" | "assistant";
                /** @description Template over {{input}}, {{output}}, {{expected_output}} and {{metadata.<path>}}; JSON values are rendered as JSON */
                content: string;
            }[];
            output: {
                /** @constant */
                kind: "numeric";
                min: number;
                max: number;
            } | {
                /** @constant */
                kind: "boolean";
            } | {
                /** @constant */
                kind: "categorical";
                /** @description label → score in [0, 1] */
                choices: {
                    [key: string]: number;
                };
            };
            /**
             * @description passed = normalised score ≥ pass_threshold
             * @default 0.5
             */
            pass_threshold: number;
            params?: {
                temperature?: number;
                top_p?: number;
                max_tokens?: number;
                seed?: number;
            };
        });
        CriteriaEvaluator: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "CriteriaEvaluator";
            criteria: {
                name: string;
                evaluator: components["schemas"]["EvaluatorConfig"];
                /** @default 1 */
                weight: number;
            }[];
            /** @default all */
            pass: ("all" | "any") | {
                min_passed: number;
            };
        };
        EvalRun: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            tenant_id: string;
            /** Format: uuid */
            dataset_id: string;
            /** Format: uuid */
            eval_version_id: string;
            /** @enum {string} */
            status: "pending" | "running" | "completed" | "failed";
            item_count: number;
            completed_count: number;
            started_at: string | null;
            completed_at: string | null;
            error_message: string | null;
            /** Format: date-time */
            created_at: string;
            /** @description The label given when the run was scheduled */
            name: string | null;
            /** @description The metadata given when the run was scheduled */
            metadata: {
                [key: string]: unknown;
            } | null;
            /**
             * Format: uuid
             * @description The dataset version pinned when the run was scheduled
             */
            dataset_version_id: string;
            passed_count: number;
            failed_count: number;
            error_count: number;
            /** @description Mean score over the items scored so far (passed_count + failed_count): items that errored (error_count) are excluded, not counted as 0; null until an item is scored */
            mean_score: number | null;
            /** @description Tokens spent on this run by generation and by llm_judge, every attempt included (cached samples cost nothing) */
            usage: {
                prompt_tokens: number;
                completion_tokens: number;
            };
            /** @description What those tokens cost, when the provider config gives prices */
            cost_usd: number | null;
            /** @description What produced the outputs scored (dataset_output: the items' stored outputs) */
            target: components["schemas"]["TargetOutput"];
            /** @description The run whose samples this run re-scores */
            outputs_from_run: string | null;
            /** @description Whether generation may reuse cached samples */
            cache: boolean;
            /** @description The run's budget, when it has one */
            max_cost_usd: number | null;
            /** @description Per criterion, in the eval version's order, for an evaluator with several criteria; empty for one evaluator */
            criteria: components["schemas"]["CriterionStats"][];
            /** @description How many times each item is generated (or read) and scored */
            repetitions: number;
            /** @description How many of an item's repetitions must pass for the item to pass (all of them unless the schedule said otherwise) */
            repetition_pass: {
                min_passed: number;
            };
            /** @description item_count × repetitions */
            sample_count: number;
            /** @description completed_count × repetitions: an item is recorded once all its repetitions are */
            completed_samples: number;
            /** @description Share of passed samples over the scored items' repetitions (mean pass rate of one try); errors excluded; null until an item is scored */
            pass_at_1: number | null;
            /** @description pass^n: share of the scored items every repetition of which passed; equals the pass rate for one repetition; null until an item is scored */
            pass_hat_n: number | null;
            /** @description Mean over the scored items of the standard deviation (n − 1) of their repetitions' scores; null for one repetition */
            mean_item_sd: number | null;
        };
        CriterionStats: {
            name: string;
            passed_count: number;
            failed_count: number;
            /** @description Items on which this criterion errored, or had no outcome because the item's generation failed */
            error_count: number;
            /** @description Mean of this criterion's scores over the items it scored (passed + failed); errors excluded; null until one is scored */
            mean_score: number | null;
            /** @description passed_count / (passed_count + failed_count): errors excluded, as for mean_score; null until one is scored */
            pass_rate: number | null;
        };
        EvalRunComparison: {
            /** Format: uuid */
            base_run_id: string;
            /** Format: uuid */
            head_run_id: string;
            summary: {
                /** @description Items scored in both runs whose score went up */
                improved: number;
                /** @description Items scored in both runs whose score went down */
                regressed: number;
                /** @description Items scored in both runs with the same score */
                unchanged: number;
                /** @description Items in both runs that are an error in at least one */
                not_comparable: number;
                only_in_base: number;
                only_in_head: number;
            };
            /** @description Whether the difference is real: over every paired item, not only this page */
            statistics: components["schemas"]["CompareStatistics"];
            /** @description The same per criterion both runs have (by name, in the base run's order): an item without the criterion's outcome on a side is not comparable; empty unless both runs have several criteria */
            criteria: {
                name: string;
                summary: {
                    improved: number;
                    regressed: number;
                    unchanged: number;
                    not_comparable: number;
                };
                statistics: components["schemas"]["CompareStatistics"];
            }[];
            data: {
                /** Format: uuid */
                item_id: string;
                /** @enum {string} */
                base_status: "passed" | "failed" | "error";
                /** @enum {string} */
                head_status: "passed" | "failed" | "error";
                base_score: number | null;
                head_score: number | null;
                /** @description head_score − base_score; null when either is an error */
                delta: number | null;
                /** @enum {string} */
                change: "improved" | "regressed" | "unchanged" | "not_comparable";
            }[];
            next_cursor: string | null;
        };
        CompareStatistics: {
            alpha: number;
            /** @description Items scored (not error) in both runs: what the statistics are over */
            paired_items: number;
            mean_base: number | null;
            mean_head: number | null;
            /** @description Mean of head_score − base_score over the paired items */
            mean_delta: number | null;
            /** @description Confidence interval (1 − alpha) of mean_delta: paired t; null with fewer than 2 paired items */
            ci_low: number | null;
            ci_high: number | null;
            /** @description Two-sided p-value of the paired t-test (the exact sign test when every difference is equal) */
            p_value: number | null;
            /** @enum {string} */
            method: "paired_t" | "sign_test" | "none";
            /** @description Paired items that failed in base and passed in head */
            fail_to_pass: number;
            /** @description Paired items that passed in base and failed in head */
            pass_to_fail: number;
            /** @description Exact McNemar test (two-sided binomial) of fail_to_pass against pass_to_fail */
            mcnemar_p_value: number;
            /**
             * @description better / worse when p_value < alpha (by the sign of mean_delta), else no_significant_difference
             * @enum {string}
             */
            verdict: "better" | "worse" | "no_significant_difference";
        };
        EvalRunItem: {
            /** Format: uuid */
            item_id: string;
            /** @enum {string} */
            status: "passed" | "failed" | "error";
            score: number | null;
            passed: boolean | null;
            reason: string | null;
            error: string | null;
            attempts: number;
            latency_ms: number;
            prompt_tokens: number | null;
            completion_tokens: number | null;
            cost_usd: number | null;
            input: unknown;
            output: unknown | null;
            expected_output: unknown | null;
            /** @description What the run's target produced for the item (null for runs over the stored outputs); its output is what was scored */
            sample: components["schemas"]["Sample"] | null;
            /** @description Each repetition's outcome for a run with several (null for one); the item's score is their mean, its sample is repetition 0's */
            repetitions: components["schemas"]["RepetitionOutcome"][] | null;
            /** @description How many repetitions passed (null for one repetition, or an error) */
            passed_repetitions: number | null;
            /** @description Standard deviation (n − 1) of the repetitions' scores (null for one repetition, or an error) */
            score_sd: number | null;
            /** @description Each criterion's outcome, for an evaluator with several criteria (null for one evaluator, and for an item whose generation failed before any criterion ran) */
            scores: components["schemas"]["CriterionScore"][] | null;
        };
        Sample: {
            /** @description The generated output: the parsed value for JSON outputs, else the text; null when generation failed */
            output: unknown | null;
            /** @description The output as text */
            output_text: string | null;
            /** @description The start of the last raw answer, when it could not be parsed */
            raw_start: string | null;
            finish_reason: string | null;
            usage: {
                prompt_tokens: number;
                completion_tokens: number;
            };
            cost_usd: number | null;
            latency_ms: number | null;
            /** @description Requests sent for this sample, 429s included (0 when cached) */
            attempts: number;
            /** @description Reused from the tenant's sample cache: no call, no cost */
            cached: boolean;
            /** @description Why generation failed after its last attempt (the item is then error) */
            error: string | null;
        };
        RepetitionOutcome: {
            repetition: number;
            /** @enum {string} */
            status: "passed" | "failed" | "error";
            score: number | null;
            passed: boolean | null;
            reason: string | null;
            error: string | null;
            /** @description Each criterion's outcome in this repetition */
            scores?: components["schemas"]["CriterionScore"][];
        };
        CriterionScore: {
            name: string;
            /** @enum {string} */
            status: "passed" | "failed" | "error";
            score: number | null;
            passed: boolean | null;
            reason: string | null;
            error: string | null;
        };
        EvalRunDeletion: {
            /** Format: uuid */
            id: string;
            /** @constant */
            status: "deleting";
        };
        GateVerdict: {
            /** Format: uuid */
            run_id: string;
            /** @description The baseline the comparison checks used; null without one */
            baseline_run_id: string | null;
            /**
             * @description pending: the run has not ended yet (ask again)
             * @enum {string}
             */
            verdict: "passed" | "failed" | "pending";
            /** @description Why the gate failed or is pending; empty when it passed */
            reasons: string[];
            checks: {
                /** @enum {string} */
                check: "min_pass_rate" | "min_criterion_pass_rate" | "max_errors" | "max_regressions" | "no_new_failures" | "no_significant_regression";
                /** @description The criterion a min_criterion_pass_rate check is about */
                criterion?: string;
                /**
                 * @description skipped: the check needs a baseline and none was found
                 * @enum {string}
                 */
                status: "passed" | "failed" | "skipped";
                actual: number | null;
                limit: number;
            }[];
            stats: {
                item_count: number;
                passed: number;
                failed: number;
                errors: number;
                /** @description passed / (passed + failed [+ errors]); null when nothing counts */
                pass_rate: number | null;
                /** @description Per criterion, for a run with several criteria (empty for one evaluator) */
                criteria: {
                    name: string;
                    passed: number;
                    failed: number;
                    errors: number;
                    /** @description As pass_rate, for this criterion */
                    pass_rate: number | null;
                }[];
                regressions: number | null;
                new_failures: number | null;
                /** @description Against the baseline, as compareEvalRuns computes it (null without a baseline or without no_significant_regression) */
                significance: {
                    mean_delta: number | null;
                    ci_low: number | null;
                    ci_high: number | null;
                    p_value: number | null;
                    /** @enum {string} */
                    verdict: "better" | "worse" | "no_significant_difference";
                } | null;
            };
        };
        Dataset: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            tenant_id: string;
            name: string;
            description: string | null;
            /** @description Number of the newest version; a new dataset is at version 1 with no items */
            latest_version: number;
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            updated_at: string;
        };
        DatasetVersion: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            dataset_id: string;
            version: number;
            item_count: number;
            /** Format: date-time */
            created_at: string;
        };
        DatasetItem: {
            /** Format: uuid */
            id: string;
            input: unknown;
            expected_output: unknown | null;
            output: unknown | null;
            metadata: {
                [key: string]: unknown;
            } | null;
            /** Format: date-time */
            created_at: string;
        };
        Eval: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            tenant_id: string;
            name: string;
            /** Format: date-time */
            created_at: string;
            latest_version: components["schemas"]["EvalVersion"];
        };
        EvalVersion: {
            /** Format: uuid */
            id: string;
            /** Format: uuid */
            eval_id: string;
            version: number;
            evaluator: components["schemas"]["EvaluatorOutput"];
            /** Format: date-time */
            created_at: string;
        };
        CreatedWebhook: {
            /** Format: uuid */
            id: string;
            url: string;
            /** Format: date-time */
            created_at: string;
            /** @description Signing secret (`whsec_…`): shown once, here. Verify each delivery's `Evalgate-Signature` with it */
            secret: string;
        };
        Webhook: {
            /** Format: uuid */
            id: string;
            url: string;
            /** Format: date-time */
            created_at: string;
        };
        TargetOutput: {
            /** @constant */
            type: "dataset_output";
        } | {
            /** @constant */
            type: "chat_completion";
            /** @description A provider configured in EVALGATE_PROVIDERS (the judge's registry; one shared budget per provider) */
            provider: string;
            model: string;
            /** @description The request's messages, rendered per item */
            messages?: {
                /** @enum {string} */
                role: "system" | "user" | "assistant" | "developer";
                /** @description Template over {{input}}, {{input.<path>}}, {{expected_output}} and {{metadata.<path>}}; JSON values are rendered as JSON */
                content: string;
            }[];
            /**
             * @description Send each item's input as the messages (it must be an array of {role, content})
             * @constant
             */
            messages_from?: "input";
            params?: {
                temperature?: number;
                top_p?: number;
                max_tokens?: number;
                max_completion_tokens?: number;
                seed?: number;
                stop?: string | string[];
                presence_penalty?: number;
                frequency_penalty?: number;
                response_format?: {
                    /** @enum {string} */
                    type: "text" | "json_object";
                } | {
                    /** @constant */
                    type: "json_schema";
                    json_schema: {
                        name: string;
                        schema: {
                            [key: string]: unknown;
                        };
                        strict?: boolean;
                        description?: string;
                    };
                };
            };
            /**
             * @description json: the answer is parsed, and an unparsable one is retried, then the item's error
             * @default text
             * @enum {string}
             */
            output: "text" | "json";
        } | {
            /** @constant */
            type: "http";
            /** @description An endpoint configured in EVALGATE_TARGETS (URL, method, headers and credentials live there) */
            endpoint: string;
            /** @description The JSON body, rendered per item: strings are templates; "{{input}}" alone is replaced by the JSON value itself */
            body: {
                [key: string]: unknown;
            } | unknown[] | string;
            /** @description Where the output is in the JSON answer; the whole answer when omitted */
            output_path?: string;
        };
        EvaluatorOutput: components["schemas"]["EvaluatorConfigOutput"] | components["schemas"]["CriteriaEvaluatorOutput"];
        EvaluatorConfigOutput: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "EvaluatorConfigOutput";
        } & ({
            /** @constant */
            type: "exact_match";
            /** @default 1 */
            threshold: number;
            value?: unknown;
            /** @default true */
            trim: boolean;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "contains";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "icontains";
            /** @default 1 */
            threshold: number;
            value?: string;
        } | {
            /** @constant */
            type: "not_contains";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "starts_with";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "ends_with";
            /** @default 1 */
            threshold: number;
            value?: string;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "contains_any";
            /** @default 1 */
            threshold: number;
            values: string[];
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "contains_all";
            /** @default 1 */
            threshold: number;
            values: string[];
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "regex";
            /** @default 1 */
            threshold: number;
            pattern: string;
            /** @default  */
            flags: string;
        } | {
            /** @constant */
            type: "is_json";
            /** @default 1 */
            threshold: number;
        } | {
            /** @constant */
            type: "json_schema";
            /** @default 1 */
            threshold: number;
            schema: {
                [key: string]: unknown;
            };
        } | {
            /** @constant */
            type: "json_match";
            /** @default 1 */
            threshold: number;
            value?: unknown;
            paths: string[];
        } | {
            /** @constant */
            type: "levenshtein";
            /** @default 0.5 */
            threshold: number;
            value?: string;
            /** @default true */
            trim: boolean;
            /** @default true */
            case_sensitive: boolean;
        } | {
            /** @constant */
            type: "numeric_diff";
            /** @default 1 */
            threshold: number;
            value?: number | string;
            /** @default 0 */
            tolerance: number;
            /** @default false */
            relative: boolean;
        } | {
            /** @constant */
            type: "token_f1";
            /** @default 0.5 */
            threshold: number;
            value?: string;
        } | {
            /** @constant */
            type: "rouge_l";
            /** @default 0.75 */
            threshold: number;
            value?: string;
        } | {
            /** @constant */
            type: "llm_judge";
            /** @description Name of a provider configured in EVALGATE_PROVIDERS */
            provider: string;
            model: string;
            messages: {
                /** @enum {string} */
                role: "system" | "user" | "assistant";
                /** @description Template over {{input}}, {{output}}, {{expected_output}} and {{metadata.<path>}}; JSON values are rendered as JSON */
                content: string;
            }[];
            output: {
                /** @constant */
                kind: "numeric";
                min: number;
                max: number;
            } | {
                /** @constant */
                kind: "boolean";
            } | {
                /** @constant */
                kind: "categorical";
                /** @description label → score in [0, 1] */
                choices: {
                    [key: string]: number;
                };
            };
            /**
             * @description passed = normalised score ≥ pass_threshold
             * @default 0.5
             */
            pass_threshold: number;
            params?: {
                temperature?: number;
                top_p?: number;
                max_tokens?: number;
                seed?: number;
            };
        });
        CriteriaEvaluatorOutput: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "CriteriaEvaluatorOutput";
            criteria: {
                name: string;
                evaluator: components["schemas"]["EvaluatorConfigOutput"];
                /** @default 1 */
                weight: number;
            }[];
            /** @default all */
            pass: ("all" | "any") | {
                min_passed: number;
            };
        };
        ErrorResponse: {
            error: string;
        };
        ScheduleEvalRunRequest: {
            /**
             * Format: uuid
             * @description Eval version to run over the dataset's latest version
             */
            eval_version_id: string;
            /** @description A label for the run (a model, a prompt, a commit); returned with it and filterable */
            name?: string;
            /** @description A small JSON object about the run (at most 50 keys, 4 KB); returned with it and filterable by containment */
            metadata?: {
                [key: string]: unknown;
            };
            /** @description What produces each item's output before it is scored: the stored output (dataset_output, the default), a chat-completions call, or the team's HTTP application */
            target?: components["schemas"]["TargetOutput"];
            /**
             * Format: uuid
             * @description Re-score this run's samples (a finished run of the same dataset that generated them) with the given eval version: no provider call
             */
            outputs_from_run?: string;
            /** @description Reuse the tenant's earlier samples of the same target, rendered request and repetition (default true); false forces fresh calls */
            cache?: boolean;
            /** @description Once the run's recorded cost reaches this, no new provider call starts; the run ends failed with "budget exceeded", its results kept */
            max_cost_usd?: number;
            /** @description Generate (or read) and score each item this many times (1–10, default 1): each repetition is a sample of its own, a real call */
            repetitions?: number;
            /** @description An item passes when at least min_passed of its repetitions pass (default: all of them) */
            repetition_pass?: {
                min_passed: number;
            };
        };
    };
    responses: {
        /** @description Malformed id, missing or ill-typed field, or a body that is not JSON */
        BadRequest: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description Missing, unknown or revoked credentials */
        Unauthorized: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description The caller's role may not do this */
        Forbidden: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description Resource not found */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description The request conflicts with the current state */
        Conflict: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description Request body too large */
        PayloadTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description The request is well-formed but cannot be processed */
        UnprocessableEntity: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description Rate limit exceeded; see Retry-After */
        TooManyRequests: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description A dependency is unavailable; retry shortly */
        ServiceUnavailable: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
    };
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    listEvalRuns: {
        parameters: {
            query?: {
                status?: "pending" | "running" | "completed" | "failed";
                name?: string;
                metadata?: string;
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["EvalRun"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    scheduleEvalRun: {
        parameters: {
            query?: never;
            header?: {
                /** @description Any unique string (e.g. a UUID) per logical request; kept 24 h */
                "idempotency-key"?: string;
            };
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ScheduleEvalRunRequest"];
            };
        };
        responses: {
            /** @description Run scheduled */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalRun"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            422: components["responses"]["UnprocessableEntity"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    compareEvalRuns: {
        parameters: {
            query: {
                /** @description The run to compare against */
                base: string;
                /** @description The run compared */
                head: string;
                alpha?: number;
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalRunComparison"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listEvalRunItems: {
        parameters: {
            query?: {
                status?: "passed" | "failed" | "error";
                criterion?: string;
                criterion_status?: "passed" | "failed" | "error";
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["EvalRunItem"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    getEvalRun: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The eval run */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalRun"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    deleteEvalRun: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Run deleted; its results are being deleted */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalRunDeletion"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    gateEvalRun: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    policy: components["schemas"]["GatePolicy"];
                    baseline?: components["schemas"]["GateBaseline"];
                };
            };
        };
        responses: {
            /** @description The verdict */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GateVerdict"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    cancelEvalRun: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Run canceled */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalRun"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    retryEvalRun: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Retry scheduled */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalRun"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listDatasets: {
        parameters: {
            query?: {
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["Dataset"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    createDataset: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name: string;
                    description?: string | null;
                };
            };
        };
        responses: {
            /** @description Dataset created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Dataset"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    getDataset: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Dataset"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    deleteDataset: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Dataset deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["Conflict"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listDatasetItems: {
        parameters: {
            query?: {
                version?: number;
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["DatasetItem"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    addDatasetItems: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /** @description Items to add (at most MAX_ITEMS_PER_REQUEST, default 10,000, else 413; larger sets go through the NDJSON upload) */
                    items: components["schemas"]["NewDatasetItem"][];
                };
            };
        };
        responses: {
            /** @description Version created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DatasetVersion"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    deleteDatasetItems: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /** @description Items of the latest version to leave out of the new version */
                    item_ids: string[];
                };
            };
        };
        responses: {
            /** @description Version created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DatasetVersion"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listDatasetVersions: {
        parameters: {
            query?: {
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["DatasetVersion"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listEvals: {
        parameters: {
            query?: {
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["Eval"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    createEval: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name: string;
                    evaluator: components["schemas"]["Evaluator"];
                };
            };
        };
        responses: {
            /** @description Eval created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Eval"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    createEvalVersion: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    evaluator: components["schemas"]["Evaluator"];
                };
            };
        };
        responses: {
            /** @description Version created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EvalVersion"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    getEval: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Eval"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    listWebhooks: {
        parameters: {
            query?: {
                cursor?: string;
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        data: components["schemas"]["Webhook"][];
                        /** @description Pass as `cursor` for the next page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    createWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /**
                     * Format: uri
                     * @description Where to POST `eval_run.completed` and `eval_run.failed` events
                     */
                    url: string;
                };
            };
        };
        responses: {
            /** @description Webhook created; keep the secret */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CreatedWebhook"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    deleteWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Webhook id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Webhook deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    uploadDatasetItems: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Dataset id */
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/x-ndjson": string;
            };
        };
        responses: {
            /** @description Version created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DatasetVersion"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    watchEvalRunEvents: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The event stream */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    exportEvalRunItems: {
        parameters: {
            query?: {
                format?: "jsonl" | "csv";
                /** @description Only items with this result */
                status?: "passed" | "failed" | "error";
            };
            header?: never;
            path: {
                /** @description Eval run id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The export */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/x-ndjson": string;
                    "text/csv": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
    exportEvalRunComparison: {
        parameters: {
            query: {
                /** @description The run to compare against */
                base: string;
                /** @description The run compared */
                head: string;
                format?: "jsonl" | "csv";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The export */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/x-ndjson": string;
                    "text/csv": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["ServiceUnavailable"];
        };
    };
}
