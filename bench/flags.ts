/** `--name VALUE` flags of the experiment benches; a flag that is absent gives the default. */
export const str = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
export const arg = (name: string, dflt: number): number => Number(str(name, String(dflt)));
