/**
 * Workflow commands an action prints on stdout (`::error file=a,line=1::message`,
 * `::add-mask::value`, `::group::name`, ...), read back the way the runner reads them,
 * and the log as the runner would show it: masks applied, commands rendered.
 */
export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  properties: Record<string, string>;
}

export interface CommandLog {
  annotations: Annotation[];
  masks: string[];
  /** Lines as the runner's log shows them, with every mask replaced by ***. */
  log: string[];
}

const COMMAND = /^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$/;

function unescapeData(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function unescapeProperty(s: string): string {
  return unescapeData(s).replace(/%3A/g, ':').replace(/%2C/g, ',');
}

function parseProperties(s: string | undefined): Record<string, string> {
  const props: Record<string, string> = {};
  for (const pair of (s ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) props[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1));
  }
  return props;
}

/** Reads the command lines of an action's stdout (and plain lines of stdout and stderr). */
export function readCommands(stdout: string, stderr: string, debug = false): CommandLog {
  const annotations: Annotation[] = [];
  const masks: string[] = [];
  const shown: string[] = [];
  let stopToken: string | undefined;
  for (const line of stdout.split('\n')) {
    const m = COMMAND.exec(line.replace(/\r$/, ''));
    if (!m) {
      shown.push(line);
      continue;
    }
    const [, name = '', props, data = ''] = m;
    if (stopToken !== undefined) {
      if (name === stopToken) stopToken = undefined;
      else shown.push(line);
      continue;
    }
    const value = unescapeData(data);
    switch (name) {
      case 'add-mask':
        if (value.trim() !== '') masks.push(value);
        break;
      case 'error':
      case 'warning':
      case 'notice':
        annotations.push({ level: name, message: value, properties: parseProperties(props) });
        shown.push(`${name[0]?.toUpperCase() ?? ''}${name.slice(1)}: ${value}`);
        break;
      case 'debug':
        if (debug) shown.push(`##[debug]${value}`);
        break;
      case 'group':
        shown.push(`##[group]${value}`);
        break;
      case 'endgroup':
        shown.push('##[endgroup]');
        break;
      case 'stop-commands':
        stopToken = value;
        break;
      default:
        shown.push(line);
    }
  }
  if (shown.at(-1) === '') shown.pop();
  const errLines = stderr.split('\n');
  if (errLines.at(-1) === '') errLines.pop();
  const log = [...shown, ...errLines].map((line) => mask(line, masks));
  return { annotations, masks, log };
}

/** Replaces each mask (and each line of a multi-line mask) with ***. */
export function mask(text: string, masks: string[]): string {
  const parts = masks.flatMap((m) => [m, ...m.split(/\r?\n/)]).filter((m) => m.trim() !== '');
  parts.sort((a, b) => b.length - a.length);
  return parts.reduce((out, m) => out.split(m).join('***'), text);
}
