/**
 * RecentIds remembers the last `capacity` ids it was given, to drop an event
 * that arrives twice (once from a replay, once from another tab) without
 * growing forever.
 */
export class RecentIds {
  private readonly ids = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;

  constructor(private readonly capacity = 4096) {}

  /** add records id and reports whether it was new. */
  add(id: string): boolean {
    if (id === "") return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.order.length < this.capacity) {
      this.order.push(id);
    } else {
      const old = this.order[this.head];
      if (old !== undefined) this.ids.delete(old);
      this.order[this.head] = id;
      this.head = (this.head + 1) % this.capacity;
    }
    return true;
  }

  /** has reports whether id was seen recently. */
  has(id: string): boolean {
    return this.ids.has(id);
  }
}
