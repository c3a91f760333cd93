/**
 * /docs: Swagger UI over the same OpenAPI document as /openapi.json, every
 * asset served from the npm package (nothing from a CDN), with a CSP that
 * tells the browser so.
 */
import fastifySwagger, { type StaticDocumentSpec } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { OpenAPIObject } from 'trpc-to-openapi';

export async function registerDocs(app: FastifyInstance, document: OpenAPIObject): Promise<void> {
  // Encapsulated: the `swagger` decorator and its routes stay out of the rest of the app.
  await app.register(async (docs) => {
    // The same JSON, typed by openapi3-ts on our side and by openapi-types on theirs.
    await docs.register(fastifySwagger, { mode: 'static', specification: { document: document as unknown as StaticDocumentSpec['document'] } });
    await docs.register(fastifySwaggerUi, {
      routePrefix: '/docs',
      // The plugin's own CSP allows https: fonts and styles, the validator badge and upgrade-insecure-requests
      // (which breaks a plain-http deployment); ours allows this origin only.
      staticCSP:
        "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; frame-ancestors 'self'; " +
        "img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'",
      uiConfig: { deepLinking: true, tryItOutEnabled: false },
    });
  });
}
