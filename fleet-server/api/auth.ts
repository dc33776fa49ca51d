/**
 * Who is calling: the operator bearer token and the role it carries. Route modules take their guard from here
 * (not from app.ts, which mounts them all), so no route module imports the app that imports it.
 */
import type { MiddlewareHandler } from 'hono';
import { AuthenticationError, PermissionError } from '../../shared/errors.js';
import type { OperatorTokens, Principal, Role } from './tokens.js';
import { roleAtLeast } from './tokens.js';

/** The API's Hono environment: the principal a guard has authenticated. */
export type Env = { Variables: { principal: Principal } };

/** Middleware: a valid operator bearer token with at least `role`. */
export function requireRole(tokens: OperatorTokens, role: Role): MiddlewareHandler<Env> {
  return async (c, next) => {
    const principal = await bearerPrincipal(tokens, c.req.header('authorization'));
    if (!principal)
      throw new AuthenticationError('a valid operator token is required (Authorization: Bearer <token>)');
    // Known before the role check, so a refused call is audited under the token that made it.
    c.set('principal', principal);
    if (!roleAtLeast(principal.role, role)) {
      throw new PermissionError(`this needs the ${role} role; the token has ${principal.role}`);
    }
    await next();
  };
}

/** The operator behind an `Authorization: Bearer <token>` header, if the token is valid. */
export async function bearerPrincipal(
  tokens: OperatorTokens,
  header: string | undefined,
): Promise<Principal | undefined> {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match ? tokens.authenticate(match[1]!) : undefined;
}
