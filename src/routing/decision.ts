import type { AdminHandler, ReturnAction, Settings } from '../config/types.js';

/** What the router decided for one request. */
export type RouteDecision =
  | { readonly kind: 'proxy'; readonly settings: Settings }
  | { readonly kind: 'return'; readonly settings: Settings; readonly action: ReturnAction }
  /** `log`: a line for the error log at `error` (nginx's "access forbidden by rule"). */
  | { readonly kind: 'error'; readonly settings: Settings; readonly status: number; readonly log?: string; readonly headers?: readonly string[] }
  /** A status location (stub_status, sluice_metrics, sluice_status, sluice_dashboard). */
  | { readonly kind: 'admin'; readonly settings: Settings; readonly handler: AdminHandler }
  /** Neither proxy nor status: nginx's static modules (index, autoindex, static) serve files. */
  | { readonly kind: 'files'; readonly settings: Settings }
  /**
   * nginx's preaccess phase has limits to check (src/limits/preaccess.ts), which may wait (a
   * delay, the primary's answer): the session runs them, then `next()` for access and content.
   */
  | { readonly kind: 'preaccess'; readonly settings: Settings; readonly next: () => RouteDecision };
