/**
 * A URL split into the part that may be shown and the credentials it carried. Replication
 * documents keep credentials in an `auth` object rather than in the URL (so CouchDB can mask
 * them), and plans show the URL without them.
 */
export interface SplitUrl {
  /** The URL without user and password, without a trailing slash. */
  url: string;
  username?: string;
  password?: string;
}

export function splitCredentials(raw: string): SplitUrl {
  const u = new URL(raw);
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.username = '';
  u.password = '';
  return { url: u.toString().replace(/\/+$/, ''), username, password };
}

/** `base/name`, the database name escaped the way CouchDB wants it in a path (`a/b` → `a%2Fb`). */
export function joinDatabase(base: string, db: string): string {
  return `${base.replace(/\/+$/, '')}/${encodeURIComponent(db)}`;
}
