import { Check, Pencil, Plus, ShoppingBasket, Trash2, X } from "lucide-react";
import {
  useCallback,
  useId,
  useLayoutEffect,
  useRef,
  useState,
  type FormEvent,
  type KeyboardEvent,
  type ReactNode,
  type RefObject,
} from "react";
import { colorOf, displayNameOf } from "../session";
import type { ItemView } from "./shopping-cache";
import { useShoppingList } from "./use-shopping-list";

/** The controls of a row that can hold the focus (data-control). */
type Control = "check" | "rename" | "remove" | "name" | "save" | "cancel";

/** LostFocus is where the focus was when its row left the page. */
interface LostFocus {
  readonly itemId: string;
  readonly control: Control;
  /** index of the row among all rows (to buy, then in the basket) before it left. */
  readonly index: number;
}

/**
 * ShoppingListView is the household's list: add, check, rename, remove.
 *
 * Keyboard focus never falls back to the page: a row that leaves (removed
 * here or by someone else) hands it to the row that takes its place, or the
 * one before, or the add field; a row that moves between "to buy" and "in
 * the basket" keeps it.
 */
export function ShoppingListView({ me }: { me: string }): ReactNode {
  const list = useShoppingList(me);
  const toBuy = list.rows.filter((r) => !r.checked);
  const inBasket = list.rows.filter((r) => r.checked);
  const total = list.rows.length;

  const sectionRef = useRef<HTMLElement>(null);
  const addInputRef = useRef<HTMLInputElement>(null);
  const order = [...toBuy, ...inBasket].map((r) => r.id);
  const shownOrder = useRef<readonly string[]>(order);
  const lostFocus = useRef<LostFocus | null>(null);
  const onFocusLost = useCallback((itemId: string, control: Control) => {
    lostFocus.current = { itemId, control, index: shownOrder.current.indexOf(itemId) };
  }, []);
  // Runs after the rows' own layout effects, so a row that moved is in place.
  useLayoutEffect(() => {
    const lost = lostFocus.current;
    lostFocus.current = null;
    shownOrder.current = order;
    if (lost === null || (document.activeElement !== null && document.activeElement !== document.body)) return;
    const root = sectionRef.current;
    const control = (itemId: string, c: Control): HTMLElement | null =>
      root?.querySelector<HTMLElement>(`[data-item-id="${CSS.escape(itemId)}"] [data-control="${c}"]:not(:disabled)`) ?? null;
    const moved = control(lost.itemId, lost.control) ?? control(lost.itemId, "check");
    if (moved !== null) {
      moved.focus();
      return;
    }
    const next = order[Math.min(Math.max(lost.index, 0), order.length - 1)];
    const sameKind = lost.control === "check" || lost.control === "remove" ? lost.control : "rename";
    const target = next === undefined ? null : control(next, sameKind);
    (target ?? addInputRef.current)?.focus();
  });

  // "Nothing to buy yet" only when the server said so: never beside a failed load.
  const emptyForSure = list.loaded && total === 0 && list.loadError === undefined;
  const summary =
    total > 0
      ? `${toBuy.length} to buy · ${inBasket.length} in the basket`
      : emptyForSure
        ? "Nothing to buy yet"
        : !list.loaded && list.loadError === undefined
          ? "Loading…"
          : "";
  return (
    <section
      ref={sectionRef}
      className="card list"
      aria-labelledby="list-title"
      data-resyncs={list.resyncs}
      data-loaded={list.loaded}
    >
      <header className="list__header">
        <div>
          <h1 id="list-title">Shopping list</h1>
          {summary ? <p className="list__summary">{summary}</p> : null}
        </div>
        {total > 0 ? (
          <div
            className="progress"
            role="progressbar"
            aria-label="In the basket"
            aria-valuemin={0}
            aria-valuemax={total}
            aria-valuenow={inBasket.length}
          >
            <span style={{ width: `${(inBasket.length / total) * 100}%` }} />
          </div>
        ) : null}
      </header>
      <AddItemForm onAdd={list.add} inputRef={addInputRef} />
      {list.loadError !== undefined ? (
        <div className="list__error" role="alert">
          {list.loaded ? "This list may be out of date. " : null}
          {list.loadError}{" "}
          <button type="button" className="link-button" onClick={() => void list.refetch()}>
            Try again now
          </button>
        </div>
      ) : null}
      {!list.loaded && list.loadError === undefined ? (
        <ul className="items" aria-busy="true" aria-label="Loading">
          {[0, 1, 2].map((i) => (
            <li key={i} className="item item--skeleton" />
          ))}
        </ul>
      ) : emptyForSure ? (
        <div className="empty">
          <ShoppingBasket size={40} aria-hidden="true" />
          <p>The list is empty. Add what the household needs; everyone sees it at once.</p>
        </div>
      ) : total === 0 ? null : (
        <>
          <ul className="items" aria-label="To buy">
            {toBuy.map((row) => (
              <ItemRow key={row.id} row={row} me={me} list={list} onFocusLost={onFocusLost} />
            ))}
          </ul>
          {inBasket.length > 0 ? (
            <>
              <h2 className="items__heading">In the basket</h2>
              <ul className="items items--done" aria-label="In the basket">
                {inBasket.map((row) => (
                  <ItemRow key={row.id} row={row} me={me} list={list} onFocusLost={onFocusLost} />
                ))}
              </ul>
            </>
          ) : null}
        </>
      )}
    </section>
  );
}

/**
 * AddItemForm clears the field as the item appears on the list, and puts
 * the text back if the add fails (unless something new was typed since),
 * so nothing typed is lost.
 */
function AddItemForm({
  onAdd,
  inputRef,
}: {
  onAdd: (name: string) => Promise<boolean>;
  inputRef: RefObject<HTMLInputElement | null>;
}): ReactNode {
  const [name, setName] = useState("");
  const inputId = useId();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const typed = name;
    const trimmed = typed.trim();
    if (trimmed === "") return;
    setName("");
    void onAdd(trimmed).then((ok) => {
      if (!ok) setName((current) => (current === "" ? typed : current));
    });
  };
  return (
    <form className="add" onSubmit={submit}>
      <label htmlFor={inputId} className="visually-hidden">
        New item
      </label>
      <input
        ref={inputRef}
        id={inputId}
        className="add__input"
        placeholder="Add an item, e.g. Oat milk"
        value={name}
        maxLength={200}
        autoComplete="off"
        enterKeyHint="done"
        onChange={(e) => setName(e.target.value)}
      />
      <button type="submit" className="button button--primary add__button" disabled={name.trim() === ""}>
        <Plus size={18} aria-hidden="true" />
        <span>Add</span>
      </button>
    </form>
  );
}

/**
 * ItemRow is one item. Renaming opens a field with Save and Cancel: Enter
 * or Save saves, Escape or Cancel cancels, and leaving the field (Tab, a
 * click elsewhere) keeps the edit open with its text: nothing is saved or
 * thrown away without the person saying so.
 */
function ItemRow({
  row,
  me,
  list,
  onFocusLost,
}: {
  row: ItemView;
  me: string;
  list: ReturnType<typeof useShoppingList>;
  onFocusLost: (itemId: string, control: Control) => void;
}): ReactNode {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(row.name);
  const liRef = useRef<HTMLLIElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const renameRef = useRef<HTMLButtonElement>(null);
  const focusAfterEdit = useRef<"name" | "rename" | null>(null);
  const formId = useId();
  const disabled = row.optimistic;

  // When the row leaves the page with the focus in it, the list moves the focus on.
  useLayoutEffect(() => {
    const li = liRef.current;
    return () => {
      const active = document.activeElement;
      if (li !== null && active instanceof HTMLElement && li.contains(active)) {
        onFocusLost(row.id, (active.dataset.control as Control | undefined) ?? "check");
      }
    };
  }, [row.id, onFocusLost]);
  useLayoutEffect(() => {
    const target = focusAfterEdit.current;
    focusAfterEdit.current = null;
    if (target === "name") inputRef.current?.select();
    if (target === "rename") renameRef.current?.focus();
  }, [editing]);

  const startEdit = (): void => {
    setDraft(row.name);
    focusAfterEdit.current = "name";
    setEditing(true);
  };
  const finish = (): void => {
    // Only pull the focus back if it is still in this row.
    const active = document.activeElement;
    focusAfterEdit.current = active !== null && liRef.current?.contains(active) ? "rename" : null;
    setEditing(false);
  };
  const save = (e: FormEvent): void => {
    e.preventDefault();
    const trimmed = draft.trim();
    finish();
    if (trimmed !== "" && trimmed !== row.name) void list.rename(row.id, trimmed);
  };
  const onKeyDown = (e: KeyboardEvent): void => {
    if (editing && e.key === "Escape") {
      e.preventDefault();
      finish();
    }
  };
  const quantity = row.quantity > 0 ? `${row.quantity}${row.unit ? ` ${row.unit}` : ""}` : "";
  return (
    <li
      ref={liRef}
      className={`item${row.checked ? " item--checked" : ""}${row.pending ? " item--pending" : ""}`}
      data-testid="item"
      data-item-id={row.id}
      data-name={row.name}
      data-checked={row.checked}
      onKeyDown={onKeyDown}
    >
      <button
        type="button"
        role="checkbox"
        aria-checked={row.checked}
        aria-label={`${row.name}: in the basket`}
        className="check"
        data-control="check"
        disabled={disabled}
        onClick={() => void list.setChecked(row.id, !row.checked)}
      >
        <Check size={16} aria-hidden="true" />
      </button>
      {editing ? (
        <form id={formId} className="item__edit" onSubmit={save}>
          <input
            ref={inputRef}
            className="item__input"
            aria-label={`New name for ${row.name}`}
            data-control="name"
            value={draft}
            maxLength={200}
            onChange={(e) => setDraft(e.target.value)}
          />
        </form>
      ) : (
        <div className="item__text">
          <span className="item__name">
            {row.name}
            {quantity ? <span className="item__qty"> · {quantity}</span> : null}
          </span>
          <span className="item__meta">
            <span className="avatar avatar--xs" style={{ background: colorOf(row.addedBy) }} aria-hidden="true">
              {displayNameOf(row.addedBy, "").slice(0, 1).toUpperCase()}
            </span>
            {row.optimistic ? "adding…" : `added by ${displayNameOf(row.addedBy, me)}`}
          </span>
        </div>
      )}
      {/* Keys keep React from turning the focused Rename button into the Save
          (submit) button in place: the click that opened the field would then
          submit it. */}
      <div className="item__actions">
        {editing ? (
          <>
            <button
              type="submit"
              form={formId}
              className="icon-button"
              aria-label={`Save the new name of ${row.name}`}
              data-control="save"
              key="save"
            >
              <Check size={18} aria-hidden="true" />
            </button>
            <button
              type="button"
              className="icon-button"
              aria-label={`Cancel renaming ${row.name}`}
              data-control="cancel"
              key="cancel"
              onClick={finish}
            >
              <X size={18} aria-hidden="true" />
            </button>
          </>
        ) : (
          <>
            <button
              ref={renameRef}
              type="button"
              className="icon-button"
              aria-label={`Rename ${row.name}`}
              data-control="rename"
              key="rename"
              disabled={disabled}
              onClick={startEdit}
            >
              <Pencil size={18} aria-hidden="true" />
            </button>
            <button
              type="button"
              className="icon-button icon-button--danger"
              aria-label={`Remove ${row.name}`}
              data-control="remove"
              key="remove"
              disabled={disabled}
              onClick={() => void list.remove(row.id)}
            >
              <Trash2 size={18} aria-hidden="true" />
            </button>
          </>
        )}
      </div>
    </li>
  );
}
