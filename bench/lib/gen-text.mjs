// Deterministic fake data shared by the PostgreSQL bench loaders (pg-data.mjs, pg-shop.mjs):
// a seeded PRNG, French-flavoured vocabularies, and a generator of words, sentences, hex and times.

export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SYLLABLES = 'ka lo mi ne ru sa te vi do pa ri mo lu ce ba fe gi ho ja ko le ma ni po qu se ti va we xa yo zu an el in on ur ar er ir or as es is os us al ol ul em im om'.split(' ');
export const FIRST = 'Alice Bruno Chloé David Emma Farid Gaëlle Hugo Inès Jules Karim Léa Manon Noah Olivia Paul Quentin Rose Sami Théo Ugo Victor Wendy Yanis Zoé Anna Ben Clara Diego Elena'.split(' ');
export const LAST = 'Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont Lambert Bonnet François Martinez'.split(' ');
export const CITIES = 'Paris Lyon Marseille Toulouse Nice Nantes Strasbourg Montpellier Bordeaux Lille Rennes Reims Grenoble Dijon Angers Brest Berlin Madrid Lisbon Milan Brussels Geneva Amsterdam Vienna Prague'.split(' ');
export const COUNTRIES = 'FR FR FR FR DE ES PT IT BE CH NL AT CZ GB US CA'.split(' ');
export const DOMAINS = 'example.org mail.example.com shop.example.net post.example.fr inbox.example.de'.split(' ');
export const STATUSES = ['paid', 'paid', 'paid', 'shipped', 'shipped', 'delivered', 'delivered', 'delivered', 'refunded', 'cancelled'];
export const CURRENCIES = ['EUR', 'EUR', 'EUR', 'USD', 'GBP', 'CHF'];
export const KINDS = ['page_view', 'page_view', 'page_view', 'search', 'add_to_cart', 'checkout', 'login', 'logout', 'api_call', 'api_call'];
export const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
export const PATHS = ['/api/v1/orders', '/api/v1/customers', '/api/v1/products', '/search', '/cart', '/checkout', '/account', '/products'];
export const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36',
  'curl/8.4.0',
  'python-requests/2.31.0',
  'okhttp/4.12.0',
];
export const MIMES = [
  ['image/jpeg', 'jpg'],
  ['image/png', 'png'],
  ['application/pdf', 'pdf'],
  ['application/zip', 'zip'],
];
export const TAGS = 'vip newsletter b2b b2c churn-risk wholesale returning first-order student senior loyalty gift'.split(' ');

export const T0 = Date.parse('2021-01-01T00:00:00Z');
export const SPAN = 5 * 365 * 86_400_000;

export class Gen {
  /** `vocabularySeed` fixes the word list, `seed` the draws: the loaders keep the data they always made. */
  constructor(seed, vocabularySeed) {
    this.r = prng(seed);
    const r = prng(vocabularySeed);
    this.words = [];
    for (let i = 0; i < 6000; i++) {
      const n = 1 + Math.floor(r() * 4);
      let w = '';
      for (let j = 0; j < n; j++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
      this.words.push(w);
    }
  }
  int(n) {
    return Math.floor(this.r() * n);
  }
  pick(a) {
    return a[Math.floor(this.r() * a.length)];
  }
  word() {
    // Zipf-like: small indexes are much more frequent.
    const u = this.r();
    return this.words[Math.floor(this.words.length * u * u * u)];
  }
  sentence(min, max) {
    const n = min + this.int(max - min + 1);
    let s = this.word();
    s = s[0].toUpperCase() + s.slice(1);
    for (let i = 1; i < n; i++) s += (this.r() < 0.08 ? ', ' : ' ') + this.word();
    return `${s}.`;
  }
  paragraph(sentences) {
    let p = '';
    for (let i = 0; i < sentences; i++) p += (i ? ' ' : '') + this.sentence(6, 22);
    return p;
  }
  hex(bytes) {
    let s = '';
    for (let i = 0; i < bytes; i += 4) s += ((this.r() * 4294967296) >>> 0).toString(16).padStart(8, '0');
    return s.slice(0, bytes * 2);
  }
  time(afterMs = T0) {
    return afterMs + Math.floor(this.r() * Math.max(1, T0 + SPAN - afterMs));
  }
}

export const ts = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '+00');
export const money = (x) => x.toFixed(2);
