// Checks a card's JSON against the Adaptive Card 1.5 element set (adaptivecards.io/explorer, schema
// 1.5): every element and action type must exist in 1.5, every property must belong to its type,
// enum-valued properties must hold a 1.5 value, and required properties must be present.
// Written from the published schema's element list; used for every card NetGuard sends.

type Rule = { props: string[]; required?: string[] };

const ELEMENT_COMMON = ['type', 'id', 'spacing', 'separator', 'height', 'isVisible', 'requires', 'fallback', 'horizontalAlignment'];
const CONTAINER_COMMON = ['selectAction', 'style', 'verticalContentAlignment', 'bleed', 'backgroundImage', 'minHeight', 'rtl'];
const ACTION_COMMON = ['type', 'id', 'title', 'iconUrl', 'style', 'fallback', 'tooltip', 'isEnabled', 'mode', 'requires'];

const ELEMENTS: Record<string, Rule> = {
  TextBlock: { props: [...ELEMENT_COMMON, 'text', 'color', 'fontType', 'isSubtle', 'maxLines', 'size', 'weight', 'wrap', 'style'], required: ['text'] },
  Image: { props: [...ELEMENT_COMMON, 'url', 'altText', 'backgroundColor', 'selectAction', 'size', 'style', 'width'], required: ['url'] },
  Media: { props: [...ELEMENT_COMMON, 'sources', 'poster', 'altText'], required: ['sources'] },
  RichTextBlock: { props: [...ELEMENT_COMMON, 'inlines'], required: ['inlines'] },
  Container: { props: [...ELEMENT_COMMON, ...CONTAINER_COMMON, 'items'], required: ['items'] },
  ColumnSet: { props: [...ELEMENT_COMMON, 'columns', 'selectAction', 'style', 'bleed', 'minHeight'] },
  FactSet: { props: [...ELEMENT_COMMON, 'facts'], required: ['facts'] },
  ImageSet: { props: [...ELEMENT_COMMON, 'images', 'imageSize'], required: ['images'] },
  ActionSet: { props: [...ELEMENT_COMMON, 'actions'], required: ['actions'] },
  Table: { props: [...ELEMENT_COMMON, 'columns', 'rows', 'firstRowAsHeader', 'showGridLines', 'gridStyle', 'horizontalCellContentAlignment', 'verticalCellContentAlignment'] },
  'Input.Text': { props: [...ELEMENT_COMMON, 'label', 'isRequired', 'errorMessage', 'isMultiline', 'maxLength', 'placeholder', 'regex', 'style', 'inlineAction', 'value'] },
  'Input.Number': { props: [...ELEMENT_COMMON, 'label', 'isRequired', 'errorMessage', 'max', 'min', 'placeholder', 'value'] },
  'Input.Date': { props: [...ELEMENT_COMMON, 'label', 'isRequired', 'errorMessage', 'max', 'min', 'placeholder', 'value'] },
  'Input.Time': { props: [...ELEMENT_COMMON, 'label', 'isRequired', 'errorMessage', 'max', 'min', 'placeholder', 'value'] },
  'Input.Toggle': { props: [...ELEMENT_COMMON, 'label', 'isRequired', 'errorMessage', 'title', 'value', 'valueOff', 'valueOn', 'wrap'], required: ['title'] },
  'Input.ChoiceSet': { props: [...ELEMENT_COMMON, 'label', 'isRequired', 'errorMessage', 'choices', 'isMultiSelect', 'style', 'value', 'placeholder', 'wrap'] },
};
const CHILDREN: Record<string, Rule> = {
  Column: { props: [...ELEMENT_COMMON, ...CONTAINER_COMMON, 'items', 'width'] },
  TableRow: { props: ['type', 'cells', 'style', 'horizontalCellContentAlignment', 'verticalCellContentAlignment'] },
  TableCell: { props: ['type', ...CONTAINER_COMMON, 'items'], required: ['items'] },
  TextRun: { props: ['type', 'text', 'color', 'fontType', 'highlight', 'isSubtle', 'italic', 'selectAction', 'size', 'strikethrough', 'underline', 'weight'], required: ['text'] },
};
const ACTIONS: Record<string, Rule> = {
  'Action.OpenUrl': { props: [...ACTION_COMMON, 'url'], required: ['url'] },
  'Action.Submit': { props: [...ACTION_COMMON, 'data', 'associatedInputs'] },
  'Action.ShowCard': { props: [...ACTION_COMMON, 'card'] },
  'Action.ToggleVisibility': { props: [...ACTION_COMMON, 'targetElements'], required: ['targetElements'] },
  'Action.Execute': { props: [...ACTION_COMMON, 'verb', 'data', 'associatedInputs'] },
};
const CARD_PROPS = ['type', 'version', '$schema', 'body', 'actions', 'refresh', 'authentication', 'selectAction', 'fallbackText', 'backgroundImage', 'minHeight', 'rtl', 'speak', 'lang', 'verticalContentAlignment', 'msteams', 'metadata'];

const ENUMS: Record<string, string[]> = {
  spacing: ['default', 'none', 'small', 'medium', 'large', 'extralarge', 'padding'],
  size: ['default', 'small', 'medium', 'large', 'extralarge', 'auto', 'stretch'],
  weight: ['default', 'lighter', 'bolder'],
  color: ['default', 'dark', 'light', 'accent', 'good', 'warning', 'attention'],
  fontType: ['default', 'monospace'],
  horizontalAlignment: ['left', 'center', 'right'],
  verticalContentAlignment: ['top', 'center', 'bottom'],
  height: ['auto', 'stretch'],
};
const CONTAINER_STYLES = ['default', 'emphasis', 'good', 'attention', 'warning', 'accent'];
const ACTION_STYLES = ['default', 'positive', 'destructive'];

export function validateCard15(card: unknown): string[] {
  const problems: string[] = [];
  const at = (path: string, msg: string): void => {
    problems.push(`${path}: ${msg}`);
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

  const checkProps = (node: Record<string, unknown>, rule: Rule, path: string) => {
    for (const key of Object.keys(node)) if (!rule.props.includes(key)) at(path, `property "${key}" is not part of ${String(node.type)} in 1.5`);
    for (const key of rule.required ?? []) if (node[key] === undefined) at(path, `required property "${key}" is missing`);
    for (const [key, allowed] of Object.entries(ENUMS)) {
      const v = node[key];
      if (v === undefined) continue;
      if (key === 'size' && node.type === 'Image' && typeof v === 'string') continue;
      if (typeof v !== 'string' || !allowed.includes(v.toLowerCase())) at(path, `${key} "${String(v)}" is not a 1.5 value`);
    }
    if (typeof node.text === 'string' && node.text.trim() === '') at(path, 'empty text');
  };
  const styleCheck = (node: Record<string, unknown>, path: string, allowed: string[]) => {
    if (node.style !== undefined && (typeof node.style !== 'string' || !allowed.includes(node.style.toLowerCase()))) at(path, `style "${String(node.style)}" is not valid here`);
  };
  const width = (v: unknown, path: string) => {
    if (v === undefined) return;
    if (typeof v === 'number' && v > 0) return;
    if (typeof v === 'string' && (/^(auto|stretch)$/i.test(v) || /^\d+px$/.test(v) || /^\d+(\.\d+)?$/.test(v))) return;
    at(path, `width ${JSON.stringify(v)} is not auto, stretch, a weight or "<n>px"`);
  };

  const element = (node: unknown, path: string): void => {
    if (!isObj(node)) return at(path, 'not an object');
    const type = String(node.type);
    const rule = ELEMENTS[type];
    if (!rule) return at(path, `element type "${type}" is not in Adaptive Cards 1.5`);
    checkProps(node, rule, path);
    if (type === 'Container') {
      styleCheck(node, path, CONTAINER_STYLES);
      items(node.items, `${path}.items`);
    }
    if (type === 'ColumnSet') {
      styleCheck(node, path, CONTAINER_STYLES);
      if (!Array.isArray(node.columns)) return at(path, 'columns must be an array');
      node.columns.forEach((col, i) => {
        const p = `${path}.columns[${i}]`;
        if (!isObj(col) || col.type !== 'Column') return at(p, 'a ColumnSet holds only Column objects');
        checkProps(col, CHILDREN.Column, p);
        styleCheck(col, p, CONTAINER_STYLES);
        width(col.width, p);
        if (col.items !== undefined) items(col.items, `${p}.items`);
      });
    }
    if (type === 'FactSet') {
      if (!Array.isArray(node.facts) || !node.facts.length) return at(path, 'facts must be a non-empty array');
      node.facts.forEach((f, i) => {
        if (!isObj(f) || typeof f.title !== 'string' || typeof f.value !== 'string' || Object.keys(f).length !== 2) at(`${path}.facts[${i}]`, 'a fact is {title, value} strings');
      });
    }
    if (type === 'ActionSet') actions(node.actions, `${path}.actions`);
    if (type === 'Table') {
      if (!Array.isArray(node.columns)) at(path, 'columns must be an array');
      else node.columns.forEach((c, i) => (isObj(c) ? width(c.width, `${path}.columns[${i}]`) : at(`${path}.columns[${i}]`, 'not an object')));
      const columnCount = Array.isArray(node.columns) ? node.columns.length : 0;
      if (!Array.isArray(node.rows)) return at(path, 'rows must be an array');
      node.rows.forEach((row, r) => {
        const p = `${path}.rows[${r}]`;
        if (!isObj(row) || row.type !== 'TableRow') return at(p, 'a Table holds only TableRow objects');
        checkProps(row, CHILDREN.TableRow, p);
        if (!Array.isArray(row.cells)) return at(p, 'cells must be an array');
        if (row.cells.length > columnCount) at(p, `${row.cells.length} cells but ${columnCount} columns`);
        row.cells.forEach((cell, c) => {
          const cp = `${p}.cells[${c}]`;
          if (!isObj(cell) || cell.type !== 'TableCell') return at(cp, 'a TableRow holds only TableCell objects');
          checkProps(cell, CHILDREN.TableCell, cp);
          items(cell.items, `${cp}.items`);
        });
      });
    }
  };
  const items = (list: unknown, path: string) => {
    if (!Array.isArray(list)) return at(path, 'must be an array');
    list.forEach((n, i) => element(n, `${path}[${i}]`));
  };
  const actions = (list: unknown, path: string) => {
    if (!Array.isArray(list) || !list.length) return at(path, 'must be a non-empty array');
    list.forEach((a, i) => {
      const p = `${path}[${i}]`;
      if (!isObj(a)) return at(p, 'not an object');
      const rule = ACTIONS[String(a.type)];
      if (!rule) return at(p, `action type "${String(a.type)}" is not in Adaptive Cards 1.5`);
      checkProps(a, rule, p);
      styleCheck(a, p, ACTION_STYLES);
      if (typeof a.title !== 'string' || !a.title) at(p, 'an action needs a title');
    });
  };

  if (!isObj(card)) return ['card: not an object'];
  if (card.type !== 'AdaptiveCard') at('card', 'type must be AdaptiveCard');
  if (card.version !== '1.5') at('card', `version must be "1.5", is ${JSON.stringify(card.version)}`);
  for (const key of Object.keys(card)) if (!CARD_PROPS.includes(key)) at('card', `property "${key}" is not part of AdaptiveCard`);
  items(card.body, 'body');
  if (card.actions !== undefined) actions(card.actions, 'actions');
  // Teams refuses cards bigger than ~28 KB.
  const size = Buffer.byteLength(JSON.stringify(card));
  if (size > 28_000) at('card', `${size} bytes: Teams accepts at most about 28 KB`);
  return problems;
}
