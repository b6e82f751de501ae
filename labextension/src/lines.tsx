/**
 * One-line labels of the narrow sidebar: a path cut at a "/" to the room it has (paths.ts), and a kernel's
 * display name whose parenthesised part never breaks across lines.
 */
import * as React from 'react';

import { fitPath } from './paths';

let canvas: HTMLCanvasElement | null = null;

/**
 * How wide a text is in `element`'s font, in CSS pixels: the font is looked up once per fit, not once for each
 * end of the path tried.
 */
function widthIn(element: HTMLElement): (text: string) => number {
  canvas ??= document.createElement('canvas');
  const context = canvas.getContext('2d');
  if (!context) {
    return () => 0;
  }
  const font = getComputedStyle(element).font;
  return text => {
    context.font = font;
    return context.measureText(text).width;
  };
}

/**
 * A path on one line: whole when it fits, else "…/" and its longest end from a "/" that does (a last name too
 * long alone cut in its middle), again whenever the line's width changes; the whole path in the tooltip.
 */
export function PathLine(props: {
  path: string;
  className?: string;
}): JSX.Element {
  const { path, className } = props;
  const ref = React.useRef<HTMLDivElement>(null);
  const [shown, setShown] = React.useState(path);
  React.useLayoutEffect(() => {
    const element = ref.current;
    if (!element) {
      return;
    }
    // The observer also reports the width it starts with, which the first fit (before paint) used already.
    let fitted = -1;
    const fit = () => {
      const room = element.clientWidth;
      if (room > 0 && room !== fitted) {
        fitted = room;
        // half a pixel spare: canvas and layout round differently
        const width = widthIn(element);
        setShown(fitPath(path, text => width(text) <= room - 0.5));
      }
    };
    fit();
    const observer =
      typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(fit);
    observer?.observe(element);
    return () => observer?.disconnect();
  }, [path]);
  return (
    <div
      ref={ref}
      className={`jp-LayenvPath${className ? ` ${className}` : ''}`}
      title={path}
    >
      {/* left-to-right marks: in the rtl box (whose CSS ellipsis, a last resort, would cut the start) "…/" stays first */}
      {`\u200e${shown}\u200e`}
    </div>
  );
}

export interface ITextPart {
  text: string;
  /** A "(…)" part: shown on one line. */
  paren: boolean;
}

/** A name's parts: the text between its parenthesised parts, and each "(…)" (innermost pairs, kept whole). */
export function parenthesisedParts(name: string): ITextPart[] {
  return name
    .split(/(\([^()]*\))/)
    .filter(Boolean)
    .map(text => ({ text, paren: /^\(.*\)$/.test(text) }));
}

/**
 * A kernel's display name that may wrap between its words but never inside "(py311_ai ▸ proj)": a parenthesised
 * part too long for a line ends in an ellipsis (the caller's tooltip has the whole name).
 */
export function KernelName({ name }: { name: string }): JSX.Element {
  return (
    <>
      {parenthesisedParts(name).map((part, i) =>
        part.paren ? (
          <span key={i} className="jp-LayenvNoBreak">
            {part.text}
          </span>
        ) : (
          part.text
        )
      )}
    </>
  );
}
