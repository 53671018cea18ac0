// Drawing helpers every task's draw.js shares: a label on a filled box, sized to the picture.

export function lineWidth(canvas) {
  return Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 200));
}

export function label(context, text, x, y, colour) {
  const size = Math.max(12, Math.round(Math.min(context.canvas.width, context.canvas.height) / 30));
  context.font = `${size}px sans-serif`;
  const width = context.measureText(text).width + size / 2;
  const top = Math.max(0, y - size * 1.3);
  context.fillStyle = colour;
  context.fillRect(x, top, width, size * 1.3);
  context.fillStyle = "#ffffff";
  context.textBaseline = "top";
  context.fillText(text, x + size / 4, top + size * 0.15);
}

export function percent(value) {
  return `${(100 * value).toFixed(1)} %`;
}
