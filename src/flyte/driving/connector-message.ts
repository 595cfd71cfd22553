// What the bridge keeps of a Flyte connector's error message. flytekit answers a connector's exception with INTERNAL
// and its whole Python traceback ("failed to create <type> task with error:\n Trace:\n\n    Traceback …\n\nMessage:
// \n\n    RuntimeError: boom."): kilobytes that would go into every event, record and log line of the attempt,
// when the exception's own line says what happened. So a traceback is replaced by that line, and any message is cut.
// (The traceback is not logged here either: a message may hold a secret, and only the executor redacts them.)

/** The longest connector message kept; a Python exception's line is far shorter. */
const MAX_CHARACTERS = 1_000;
const TRACEBACK = "Traceback (most recent call last)";
/** flytekit's section holding the exception's message after the traceback. */
const MESSAGE_SECTION = /\n\s*Message:\s*\n([\s\S]*)$/;

export function connectorMessage(details: string): string {
  let text = details;
  if (text.includes(TRACEBACK)) {
    const lines = text.split("\n").map((line) => line.trim());
    const head = lines[0] ?? "";
    const exception = MESSAGE_SECTION.exec(text)?.[1]?.trim() ?? lines.filter((line) => line !== "").at(-1) ?? "";
    text = `${head} ${exception.replace(/\s+/g, " ")} (Python traceback cut)`;
  }
  return text.length <= MAX_CHARACTERS ? text : `${text.slice(0, MAX_CHARACTERS)}… (cut from ${text.length} characters)`;
}
