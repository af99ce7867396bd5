// Stripe's v1 wire format: `application/x-www-form-urlencoded` with bracketed nested keys, as
// stripe-node's queryStringifyRequestData writes them (`payload[value]=5`, `tiers[0][up_to]=100`,
// `expand[]=x`). Numeric or empty brackets make arrays; everything else makes objects.

export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

function keySegments(key: string): string[] {
  const open = key.indexOf('[');
  if (open <= 0) return [key];
  const segments = [key.slice(0, open)];
  const pattern = /\[([^\]]*)\]/g;
  for (const match of key.slice(open).matchAll(pattern)) segments.push(match[1] ?? '');
  return segments;
}

function isIndex(segment: string): boolean {
  return segment === '' || /^\d+$/.test(segment);
}

export function parseForm(text: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const segments = keySegments(key);
    let node: FormObject | FormValue[] = root;
    segments.forEach((segment, i) => {
      const last = i === segments.length - 1;
      const next = segments[i + 1];
      if (Array.isArray(node)) {
        const index = segment === '' ? node.length : Number(segment);
        if (last) node[index] = value;
        else {
          node[index] ??= isIndex(next ?? '') ? [] : {};
          node = node[index] as FormObject | FormValue[];
        }
        return;
      }
      if (last) node[segment] = value;
      else {
        const existing = node[segment];
        if (existing === undefined || typeof existing === 'string')
          node[segment] = isIndex(next ?? '') ? [] : {};
        node = node[segment] as FormObject | FormValue[];
      }
    });
  }
  return root;
}
