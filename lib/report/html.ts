import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ReportItem {
  id: string;
  /** Image files (or `data:` URIs, e.g. adaptive-patch pictures) shown as thumbnails, embedded so the page stands alone. */
  images: string[];
  reference: string;
  generated: Record<string, string>;
  /** Short explanation lines (e.g. prototype indices per word). */
  notes?: string[];
}

export interface HtmlReport {
  title: string;
  /** Score table: column (e.g. 'XProNet', 'most common report') -> metric -> value. */
  scores: Record<string, Record<string, number>>;
  settings: Record<string, unknown>;
  items: ReportItem[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function dataUri(file: string): string {
  if (file.startsWith('data:')) return file;
  try {
    const ext = path.extname(file).toLowerCase();
    const mime = ext === '.png' ? 'image/png' : 'image/jpeg';
    return `data:${mime};base64,${fs.readFileSync(file).toString('base64')}`;
  } catch {
    return '';
  }
}

/** Writes a self-contained HTML page: scores side by side, then each study's images and reports. */
export function writeHtmlReport(file: string, r: HtmlReport): void {
  const columns = Object.keys(r.scores);
  const metrics = [...new Set(columns.flatMap((c) => Object.keys(r.scores[c])))];
  const table = `<table class="scores"><tr><th>metric</th>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${metrics
    .map((m) => `<tr><td>${esc(m)}</td>${columns.map((c) => `<td>${r.scores[c][m] === undefined ? '' : r.scores[c][m].toFixed(4)}</td>`).join('')}</tr>`)
    .join('')}</table>`;
  const items = r.items
    .map(
      (it) => `<div class="item"><div class="imgs">${it.images.map((p) => `<img src="${dataUri(p)}" alt="${esc(p.startsWith('data:') ? 'picture' : path.basename(p))}">`).join('')}<div class="id">${esc(it.id)}</div></div>
<div class="texts"><p><b>Ground truth:</b> ${esc(it.reference)}</p>${Object.entries(it.generated)
        .map(([k, v]) => `<p><b>${esc(k)}:</b> ${esc(v)}</p>`)
        .join('')}${(it.notes ?? []).map((n) => `<p class="note">${esc(n)}</p>`).join('')}</div></div>`,
    )
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(r.title)}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table.scores{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}.item{display:flex;gap:1em;border-top:1px solid #ddd;padding:1em 0}.imgs img{width:192px;height:192px;margin-right:4px;image-rendering:pixelated}
.id{font-size:12px;color:#666}.texts{flex:1}.note{font-size:12px;color:#555;font-family:monospace}pre{background:#f6f6f6;padding:1em;overflow:auto}
</style></head><body><h1>${esc(r.title)}</h1><h2>Scores</h2>${table}<h2>Settings</h2><pre>${esc(JSON.stringify(r.settings, null, 2))}</pre><h2>Studies</h2>${items}</body></html>`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, html);
}
