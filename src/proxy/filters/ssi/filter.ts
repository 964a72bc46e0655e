/**
 * The SSI response filter (ngx_http_ssi_filter_module): {@link ssiHeaderFilter} judges a head as
 * nginx's header filter does and rewrites it; {@link responseFilters} chains SSI and compression
 * (gzip sees the processed body, as nginx's filter order has it) for the front ends that relay a
 * proxied response; static files call the two in content.ts.
 */
import { Readable } from 'node:stream';
import type { Settings } from '../../../config/types.js';
import type { ErrorLog } from '../../../observability/error-log.js';
import type { RequestContext } from '../../context/request-context.js';
import type { Variables } from '../../context/variables.js';
import { compressionFilter, lastValue, removeAll, typeMatches, weakenEtag } from '../compression.js';
import { ssiBody, type Subrequest } from './processor.js';

export type { Subrequest, SubResponse } from './processor.js';

/** A body transform chosen for one response head (SSI, compression, or both). */
export interface BodyFilter {
  attach(body: Readable): Readable;
}

/**
 * ngx_http_ssi_header_filter: `ssi on`, a body that is not known to be empty, a type of
 * ssi_types. For the client's own request the length and ranges go (the body changes), and
 * Last-Modified and ETag too unless ssi_last_modified is on (then a strong ETag turns weak).
 * True when the body is to be processed.
 */
export function ssiHeaderFilter(ctx: RequestContext, settings: Settings | null, headers: string[]): boolean {
  if (settings === null || !settings.ssi.enabled) return false;
  if (lastValue(headers, 'content-length') === '0') return false;
  if (!typeMatches(settings.ssi.types, lastValue(headers, 'content-type'))) return false;
  if (ctx.parent === null) {
    removeAll(headers, 'content-length');
    removeAll(headers, 'accept-ranges');
    if (!settings.ssi.lastModified) {
      removeAll(headers, 'last-modified');
      removeAll(headers, 'etag');
    } else {
      weakenEtag(headers);
    }
  }
  return true;
}

/** What processing a body needs besides the request: the runtime's variables, the log, subrequests. */
export interface SsiDeps {
  readonly vars: Variables;
  readonly log: ErrorLog;
  readonly subrequest: Subrequest;
}

/** The SSI body filter for one request. */
export function ssiFilter(ctx: RequestContext, settings: Settings, deps: SsiDeps): BodyFilter {
  return {
    attach(body: Readable): Readable {
      const out = Readable.from(ssiBody(body, { ctx, settings, vars: deps.vars, log: deps.log, subrequest: deps.subrequest }), { objectMode: false });
      // A reader that goes away ends the processing, which destroys the body (the file, the upstream read).
      out.once('close', () => {
        if (!body.readableEnded) body.destroy();
      });
      return out;
    },
  };
}

/** Two filters in order (SSI, then compression): null when neither applies. */
export function chainFilters(first: BodyFilter | null, second: BodyFilter | null): BodyFilter | null {
  if (first === null) return second;
  if (second === null) return first;
  return {
    attach(body: Readable): Readable {
      const middle = first.attach(body);
      const out = second.attach(middle);
      out.once('close', () => {
        if (!middle.readableEnded) middle.destroy();
      });
      middle.once('error', (err: Error) => out.destroy(err));
      return out;
    },
  };
}

/** The header filters of a relayed response (SSI, then compression), and the body filter they chose. */
export function responseFilters(ctx: RequestContext, settings: Settings | null, status: number, headers: string[], deps: SsiDeps): BodyFilter | null {
  const ssi = ssiHeaderFilter(ctx, settings, headers) ? ssiFilter(ctx, settings as Settings, deps) : null;
  return chainFilters(ssi, compressionFilter(ctx, settings, status, headers));
}
