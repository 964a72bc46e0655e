/**
 * strftime(3) for SSI's `config timefmt` and `$date_local` / `$date_gmt` (nginx formats them with
 * the C library's strftime, in the C locale; `%s` alone is the seconds since the epoch).
 */

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** nginx's default `timefmt` (ngx_http_ssi_timefmt). */
export const DEFAULT_TIMEFMT = '%A, %d-%b-%Y %H:%M:%S %Z';

function pad(n: number, width = 2, fill = '0'): string {
  return String(n).padStart(width, fill);
}

interface Parts {
  readonly year: number; readonly month: number; readonly day: number; readonly weekday: number;
  readonly hours: number; readonly minutes: number; readonly seconds: number;
  readonly offsetMinutes: number; readonly zone: string;
}

function partsOf(d: Date, gmt: boolean): Parts {
  if (gmt) {
    return {
      year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), weekday: d.getUTCDay(),
      hours: d.getUTCHours(), minutes: d.getUTCMinutes(), seconds: d.getUTCSeconds(), offsetMinutes: 0, zone: 'GMT',
    };
  }
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
  return {
    year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), weekday: d.getDay(),
    hours: d.getHours(), minutes: d.getMinutes(), seconds: d.getSeconds(), offsetMinutes: -d.getTimezoneOffset(),
    // The C library names UTC "UTC"; Intl may say "GMT" or "GMT+2" where no abbreviation exists.
    zone: zone === 'GMT' && d.getTimezoneOffset() === 0 ? 'UTC' : zone,
  };
}

function dayOfYear(p: Parts): number {
  return Math.floor((Date.UTC(p.year, p.month, p.day) - Date.UTC(p.year, 0, 1)) / 86_400_000) + 1;
}

/** `format` applied to `d`, in local time or GMT. */
export function strftime(format: string, d: Date, gmt: boolean): string {
  if (format === '%s') return String(Math.floor(d.getTime() / 1000));
  const p = partsOf(d, gmt);
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i] as string;
    if (c !== '%' || i === format.length - 1) {
      out += c;
      continue;
    }
    const f = format[++i] as string;
    switch (f) {
      case 'A': out += DAYS[p.weekday]; break;
      case 'a': out += DAYS[p.weekday]!.slice(0, 3); break;
      case 'B': out += MONTHS[p.month]; break;
      case 'b': case 'h': out += MONTHS[p.month]!.slice(0, 3); break;
      case 'C': out += pad(Math.floor(p.year / 100)); break;
      case 'd': out += pad(p.day); break;
      case 'e': out += pad(p.day, 2, ' '); break;
      case 'D': out += `${pad(p.month + 1)}/${pad(p.day)}/${pad(p.year % 100)}`; break;
      case 'F': out += `${p.year}-${pad(p.month + 1)}-${pad(p.day)}`; break;
      case 'H': out += pad(p.hours); break;
      case 'I': out += pad(p.hours % 12 === 0 ? 12 : p.hours % 12); break;
      case 'j': out += pad(dayOfYear(p), 3); break;
      case 'k': out += pad(p.hours, 2, ' '); break;
      case 'l': out += pad(p.hours % 12 === 0 ? 12 : p.hours % 12, 2, ' '); break;
      case 'm': out += pad(p.month + 1); break;
      case 'M': out += pad(p.minutes); break;
      case 'n': out += '\n'; break;
      case 'p': out += p.hours < 12 ? 'AM' : 'PM'; break;
      case 'R': out += `${pad(p.hours)}:${pad(p.minutes)}`; break;
      case 'S': out += pad(p.seconds); break;
      case 's': out += String(Math.floor(d.getTime() / 1000)); break;
      case 't': out += '\t'; break;
      case 'T': out += `${pad(p.hours)}:${pad(p.minutes)}:${pad(p.seconds)}`; break;
      case 'u': out += String(p.weekday === 0 ? 7 : p.weekday); break;
      case 'w': out += String(p.weekday); break;
      case 'y': out += pad(p.year % 100); break;
      case 'Y': out += String(p.year); break;
      case 'z': {
        const m = Math.abs(p.offsetMinutes);
        out += `${p.offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(m / 60))}${pad(m % 60)}`;
        break;
      }
      case 'Z': out += p.zone; break;
      case '%': out += '%'; break;
      default: out += `%${f}`;
    }
  }
  return out;
}
