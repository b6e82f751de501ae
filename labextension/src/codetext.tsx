/**
 * The server writes commands in its messages as Markdown code spans (`jupyter layenv doctor`): the panel shows
 * them as code, built as DOM nodes (never the server's text as HTML), and drops the backticks where only plain
 * text fits (a tooltip).
 */
import * as React from 'react';

export interface ICodePart {
  text: string;
  /** A `…` part: shown as code, without its backticks. */
  code: boolean;
}

/** One backtick-quoted span on one line (a lone backtick stays text, as in Markdown). */
const CODE_SPAN = /`([^`\n]+)`/g;

/** A message's parts: its text, and each code span's text. */
export function codeParts(message: string): ICodePart[] {
  const parts: ICodePart[] = [];
  let last = 0;
  for (const match of message.matchAll(CODE_SPAN)) {
    const at = match.index ?? 0;
    if (at > last) {
      parts.push({ text: message.slice(last, at), code: false });
    }
    parts.push({ text: match[1], code: true });
    last = at + match[0].length;
  }
  if (last < message.length) {
    parts.push({ text: message.slice(last), code: false });
  }
  return parts;
}

/** A message as plain text: its code spans without their backticks (for a title attribute). */
export function plainText(message: string): string {
  return message.replace(CODE_SPAN, '$1');
}

/** A server message with its code spans as <code> elements. */
export function CodeText({ text }: { text: string }): JSX.Element {
  return (
    <>
      {codeParts(text).map((part, i) =>
        part.code ? (
          <code key={i} className="jp-LayenvCode">
            {part.text}
          </code>
        ) : (
          part.text
        )
      )}
    </>
  );
}

/** A dialog body showing a server message (showDialog takes an element; a string would keep the backticks). */
export function codeBody(text: string): React.ReactElement {
  return (
    <div className="jp-LayenvDialogText">
      <CodeText text={text} />
    </div>
  );
}
