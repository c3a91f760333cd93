/**
 * `npm run build:client`: builds the publishable `@evalgate/client`
 * (client/package.json) into client/dist/, then `npm pack ./client`.
 *
 * 1. Regenerates client/openapi-types.ts (the REST `paths`) from openapi.json.
 * 2. Compiles client/index.ts and client/rest.ts to ESM .js and .d.ts with the
 *    TypeScript compiler (relative `.ts` imports rewritten to `.js`).
 * 3. Writes dist/app-router.d.ts: a self-contained `AppRouter`. A plain
 *    declaration emit of client/ would follow routers/_app.ts into domain/ and
 *    server/ (and fail there); instead only routers/_app.ts's declaration is
 *    emitted (in memory), whose inferred router type is structural: procedure
 *    inputs and outputs are spelled out, the rest are @trpc/server types. Its
 *    `ctx` (the server's Context) and `meta` (the server's OpenAPI meta) name
 *    server files; the client reads neither, so they become `object`. Any other
 *    reference to one of our files fails the build.
 * 4. Checks the result: dist/ typechecks on its own as a strict NodeNext
 *    consumer sees it (no allowImportingTsExtensions), and the shipped
 *    AppRouter has the same procedure inputs and outputs as the server's.
 *
 * `--out-dir <dir>` builds elsewhere (the package test uses a folder under
 * test-artifacts/); it then leaves client/openapi-types.ts alone and fails
 * when it is stale.
 *
 * The package's declarations import `@trpc/server` (types only): it is a
 * required peer of @trpc/client, so npm installs it with it; client/package.json
 * names it as a peer too, for package managers that do not hoist.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { generateOpenApiTypes, OPENAPI_TYPES_FILE } from './client-openapi-types.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const clientDir = join(root, 'client');
const args = process.argv.slice(2);
const outAt = args.indexOf('--out-dir');
const outDir = outAt >= 0 ? resolve(args[outAt + 1] ?? fail('--out-dir needs a folder')) : join(clientDir, 'dist');
const ENTRIES = ['client/index.ts', 'client/rest.ts'];
/** Type names the AppRouter declaration may use besides @trpc/server's: the standard library's. */
const GLOBAL_TYPES = new Set(['Record', 'Partial', 'Readonly', 'Pick', 'Omit', 'Array', 'ReadonlyArray', 'Promise', 'AsyncIterable', 'AsyncGenerator', 'AsyncIterableIterator']);

function fail(message: string): never {
  process.stderr.write(`build:client: ${message}\n`);
  process.exit(1);
}

function report(diagnostics: readonly ts.Diagnostic[], what: string): void {
  if (diagnostics.length === 0) return;
  const host: ts.FormatDiagnosticsHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
  fail(`${what}:\n${ts.formatDiagnostics(diagnostics, host)}`);
}

// 1. REST types
const types = await generateOpenApiTypes();
if (readFileSync(OPENAPI_TYPES_FILE, 'utf8') !== types) {
  if (outAt >= 0) fail('client/openapi-types.ts is stale: run npm run build:client');
  writeFileSync(OPENAPI_TYPES_FILE, types);
  process.stdout.write('build:client: rewrote client/openapi-types.ts from openapi.json\n');
}

// 2. JS and declarations of the entries
const base = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => report([d], 'tsconfig.json') });
if (!base) fail('cannot read tsconfig.json');
const options: ts.CompilerOptions = {
  ...base.options,
  noEmit: false,
  declaration: true,
  rewriteRelativeImportExtensions: true,
  sourceMap: false,
  declarationMap: false,
  incremental: false,
  rootDir: root,
  outDir: join(root, '.client-build'), // never written: writeFile below maps every output
};
const program = ts.createProgram({ rootNames: [...ENTRIES, 'routers/_app.ts'].map((f) => join(root, f)), options });

const sourceOf = (f: string) => program.getSourceFile(join(root, f)) ?? fail(`${f} is not in the program`);
for (const f of ENTRIES) {
  const sf = sourceOf(f);
  report([...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf), ...program.getDeclarationDiagnostics(sf)], f);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const written: string[] = [];
const writeOut = (name: string, text: string) => {
  writeFileSync(join(outDir, name), text);
  written.push(name);
};
for (const f of ENTRIES) {
  const result = program.emit(sourceOf(f), (fileName, text) => {
    const name = relative(join(options.outDir!, 'client'), fileName);
    if (name !== basename(fileName)) fail(`unexpected output ${fileName}`);
    writeOut(name, name.endsWith('.d.ts') ? jsSpecifiers(text) : text);
  });
  report(result.diagnostics, `emit ${f}`);
}
// The generated REST types (imported by rest.ts, types only): their declaration is the file itself.
writeOut('openapi-types.d.ts', readFileSync(OPENAPI_TYPES_FILE, 'utf8'));

/** rewriteRelativeImportExtensions leaves declarations alone: `from './x.ts'` → `from './x.js'`, as in the .js. */
function jsSpecifiers(dts: string): string {
  const sf = ts.createSourceFile('x.d.ts', dts, ts.ScriptTarget.Latest, true);
  const specs: ts.StringLiteral[] = [];
  for (const st of sf.statements) {
    const spec = ts.isImportDeclaration(st) || ts.isExportDeclaration(st) ? st.moduleSpecifier : undefined;
    if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.') && spec.text.endsWith('.ts')) specs.push(spec);
  }
  let out = dts;
  for (const spec of specs.reverse()) {
    out = `${out.slice(0, spec.getStart(sf))}'${spec.text.slice(0, -'.ts'.length)}.js'${out.slice(spec.getEnd())}`;
  }
  if (/import\("\.|from '\..*\.ts'/.test(out)) fail('a declaration still imports a .ts file');
  return out;
}

// 3. The self-contained AppRouter
let appDts = '';
const appResult = program.emit(sourceOf('routers/_app.ts'), (_f, text) => (appDts = text), undefined, true);
report(appResult.diagnostics, 'declaration of routers/_app.ts');
writeOut('app-router.d.ts', flattenAppRouter(appDts));

function flattenAppRouter(dts: string): string {
  const sf = ts.createSourceFile('_app.d.ts', dts, ts.ScriptTarget.Latest, true);
  let typeNode: ts.TypeNode | undefined;
  for (const st of sf.statements) {
    if (!ts.isVariableStatement(st)) continue;
    for (const d of st.declarationList.declarations) {
      if (ts.isIdentifier(d.name) && d.name.text === 'appRouter') typeNode = d.type;
    }
  }
  if (!typeNode || !ts.isImportTypeNode(typeNode) || typeNode.qualifier?.getText(sf) !== 'TRPCBuiltRouter' || !typeNode.typeArguments?.[0]) {
    fail('routers/_app.d.ts: expected `appRouter: import("@trpc/server").TRPCBuiltRouter<…>`');
  }
  const rootConfig = typeNode.typeArguments[0];
  if (!ts.isTypeLiteralNode(rootConfig)) fail('routers/_app.d.ts: the router config is not a type literal');

  // Spans to replace with `object`: the config's ctx, and every `meta: Meta` (the config's and each procedure's).
  const edits: { start: number; end: number }[] = [];
  const propertyType = (m: ts.Node, name: string) => (ts.isPropertySignature(m) && m.type && ts.isIdentifier(m.name) && m.name.text === name ? m.type : undefined);
  for (const m of rootConfig.members) {
    const ctx = propertyType(m, 'ctx');
    if (ctx) edits.push({ start: ctx.getStart(sf), end: ctx.getEnd() });
  }
  const findMeta = (n: ts.Node): void => {
    const meta = propertyType(n, 'meta');
    if (meta && ts.isTypeReferenceNode(meta) && meta.getText(sf) === 'Meta') edits.push({ start: meta.getStart(sf), end: meta.getEnd() });
    ts.forEachChild(n, findMeta);
  };
  findMeta(typeNode);
  if (edits.length < 2) fail('routers/_app.d.ts: expected ctx and meta in the router config');

  // Anything else must be spelled out or come from @trpc/server.
  const offending: string[] = [];
  const inEdit = (n: ts.Node) => edits.some((e) => n.getStart(sf) >= e.start && n.getEnd() <= e.end);
  const visit = (n: ts.Node): void => {
    if (inEdit(n)) return;
    if (ts.isImportTypeNode(n)) {
      const spec = ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal) ? n.argument.literal.text : '?';
      if (spec !== '@trpc/server') offending.push(`import("${spec}")`);
    } else if (ts.isTypeReferenceNode(n)) {
      const name = n.typeName.getText(sf);
      if (!GLOBAL_TYPES.has(name)) offending.push(name);
    } else if (ts.isTypeQueryNode(n)) {
      offending.push(n.getText(sf));
    }
    ts.forEachChild(n, visit);
  };
  visit(typeNode);
  if (offending.length > 0) fail(`the AppRouter type names what the package cannot ship: ${[...new Set(offending)].join(', ')}`);

  let text = typeNode.getText(sf);
  const offset = typeNode.getStart(sf);
  for (const e of edits.sort((a, b) => b.start - a.start)) text = text.slice(0, e.start - offset) + 'object' + text.slice(e.end - offset);
  return (
    '/**\n' +
    ' * The evalgate API router type (procedures, their inputs and outputs), generated\n' +
    " * from the server's routers/_app.ts by scripts/build-client.ts.\n" +
    ' */\n' +
    `export type AppRouter = ${text};\n`
  );
}

// 4. Checks
function checkDist(): void {
  // As a strict NodeNext app sees the package, libraries' .d.ts checked too. DOM: @trpc/client's
  // own declarations name RequestInfo, which @types/node does not declare (README, "Typed client").
  const consumer = ts.createProgram({
    rootNames: written.filter((f) => f.endsWith('.d.ts')).map((f) => join(outDir, f)),
    options: { strict: true, noEmit: true, skipLibCheck: false, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'], types: ['node'] },
  });
  report(ts.getPreEmitDiagnostics(consumer), 'client/dist does not typecheck on its own');

  // The shipped AppRouter answers every procedure with the server's input and output types.
  const checkFile = join(clientDir, `.app-router-check-${process.pid}.ts`);
  const shipped = relative(clientDir, join(outDir, 'app-router.js')).replaceAll('\\', '/');
  writeFileSync(
    checkFile,
    [
      "import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';",
      "import type { AppRouter as Server } from '../routers/_app.ts';",
      `import type { AppRouter as Shipped } from '${shipped.startsWith('.') ? shipped : `./${shipped}`}';`,
      'type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;',
      '/** The procedures whose types differ (the error names them). */',
      'type Differ<A, B> = { [K in keyof A | keyof B]: Same<K extends keyof A ? A[K] : never, K extends keyof B ? B[K] : never> extends true ? never : K }[keyof A | keyof B];',
      'export const inputsDiffer: never = null as unknown as Differ<inferRouterInputs<Server>, inferRouterInputs<Shipped>>;',
      'export const outputsDiffer: never = null as unknown as Differ<inferRouterOutputs<Server>, inferRouterOutputs<Shipped>>;',
      '',
    ].join('\n'),
  );
  let diagnostics: readonly ts.Diagnostic[];
  try {
    const check = ts.createProgram({ rootNames: [checkFile], options: { ...base!.options, noEmit: true } });
    diagnostics = ts.getPreEmitDiagnostics(check, check.getSourceFile(checkFile));
  } finally {
    rmSync(checkFile, { force: true }); // before report(), which exits
  }
  report(diagnostics, "the shipped AppRouter differs from the server's");
}
checkDist();

process.stdout.write(`build:client: wrote ${written.sort().map((f) => relative(root, join(outDir, f))).join(', ')}\n`);
