/**
 * The runner's file-command format for GITHUB_OUTPUT, GITHUB_STATE and GITHUB_ENV:
 * `name=value` lines, or `name<<DELIMITER` followed by value lines and the delimiter
 * alone on a line. Parsed the way actions/runner's FileCommandManager does.
 */
export function parseFileCommands(content: string, file: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = content.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line === '') continue;
    const equals = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (equals >= 0 && (heredoc < 0 || equals < heredoc)) {
      const name = line.slice(0, equals);
      if (name === '') throw new Error(`${file}: line ${i + 1} has an empty name`);
      result[name] = line.slice(equals + 1);
      continue;
    }
    if (heredoc < 0) throw new Error(`${file}: line ${i + 1} is not name=value or name<<DELIM`);
    const name = line.slice(0, heredoc);
    const delimiter = line.slice(heredoc + 2);
    if (name === '' || delimiter === '') {
      throw new Error(`${file}: line ${i + 1} has an empty name or delimiter`);
    }
    const value: string[] = [];
    for (i++; ; i++) {
      if (i >= lines.length) throw new Error(`${file}: delimiter ${delimiter} not found`);
      const next = (lines[i] ?? '').replace(/\r$/, '');
      if (next === delimiter) break;
      value.push(next);
    }
    result[name] = value.join('\n');
  }
  return result;
}
