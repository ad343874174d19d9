import { Check, Pencil, Plus, ShoppingBasket, Trash2, X } from "lucide-react";
import { useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import { colorOf, displayNameOf } from "../session";
import type { ItemView } from "./shopping-state";
import { useShoppingList } from "./use-shopping-list";

/** ShoppingListView is the household's list: add, check, rename, remove. */
export function ShoppingListView({ me }: { me: string }): ReactNode {
  const list = useShoppingList(me);
  const toBuy = list.rows.filter((r) => !r.checked);
  const inBasket = list.rows.filter((r) => r.checked);
  const total = list.rows.length;
  return (
    <section className="card list" aria-labelledby="list-title" data-resyncs={list.resyncs} data-loaded={list.loaded}>
      <header className="list__header">
        <div>
          <h1 id="list-title">Shopping list</h1>
          <p className="list__summary">
            {total === 0
              ? "Nothing to buy yet"
              : `${toBuy.length} to buy · ${inBasket.length} in the basket`}
          </p>
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
      <AddItemForm onAdd={list.add} />
      {list.loadError !== undefined && !list.loaded ? (
        <div className="list__error" role="alert">
          Couldn't load the list: {list.loadError}.{" "}
          <button type="button" className="link-button" onClick={() => void list.refetch()}>
            Try again
          </button>
        </div>
      ) : !list.loaded ? (
        <ul className="items" aria-busy="true" aria-label="Loading">
          {[0, 1, 2].map((i) => (
            <li key={i} className="item item--skeleton" />
          ))}
        </ul>
      ) : total === 0 ? (
        <div className="empty">
          <ShoppingBasket size={40} aria-hidden="true" />
          <p>The list is empty. Add what the household needs; everyone sees it at once.</p>
        </div>
      ) : (
        <>
          <ul className="items" aria-label="To buy">
            {toBuy.map((row) => (
              <ItemRow key={row.id} row={row} me={me} list={list} />
            ))}
          </ul>
          {inBasket.length > 0 ? (
            <>
              <h2 className="items__heading">In the basket</h2>
              <ul className="items items--done" aria-label="In the basket">
                {inBasket.map((row) => (
                  <ItemRow key={row.id} row={row} me={me} list={list} />
                ))}
              </ul>
            </>
          ) : null}
        </>
      )}
    </section>
  );
}

function AddItemForm({ onAdd }: { onAdd: (name: string) => Promise<void> }): ReactNode {
  const [name, setName] = useState("");
  const inputId = useId();
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const trimmed = name.trim();
    if (trimmed === "") return;
    setName("");
    void onAdd(trimmed);
  };
  return (
    <form className="add" onSubmit={submit}>
      <label htmlFor={inputId} className="visually-hidden">
        New item
      </label>
      <input
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

function ItemRow({
  row,
  me,
  list,
}: {
  row: ItemView;
  me: string;
  list: ReturnType<typeof useShoppingList>;
}): ReactNode {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(row.name);
  const inputRef = useRef<HTMLInputElement>(null);
  const cancelled = useRef(false);
  const disabled = row.optimistic;
  const startEdit = (): void => {
    setDraft(row.name);
    cancelled.current = false;
    setEditing(true);
    requestAnimationFrame(() => inputRef.current?.select());
  };
  const save = (e?: FormEvent): void => {
    e?.preventDefault();
    if (cancelled.current) return;
    cancelled.current = true; // once: submit and the blur that follows
    const trimmed = draft.trim();
    setEditing(false);
    if (trimmed !== "" && trimmed !== row.name) void list.rename(row.id, trimmed);
  };
  const quantity = row.quantity > 0 ? `${row.quantity}${row.unit ? ` ${row.unit}` : ""}` : "";
  return (
    <li
      className={`item${row.checked ? " item--checked" : ""}${row.pending ? " item--pending" : ""}`}
      data-testid="item"
      data-name={row.name}
      data-checked={row.checked}
    >
      <button
        type="button"
        role="checkbox"
        aria-checked={row.checked}
        aria-label={`${row.name}: in the basket`}
        className="check"
        disabled={disabled}
        onClick={() => void list.setChecked(row.id, !row.checked)}
      >
        <Check size={16} aria-hidden="true" />
      </button>
      {editing ? (
        <form className="item__edit" onSubmit={save}>
          <input
            ref={inputRef}
            className="item__input"
            aria-label={`New name for ${row.name}`}
            value={draft}
            maxLength={200}
            onChange={(e) => setDraft(e.target.value)}
            onBlur={() => save()}
            onKeyDown={(e) => {
              if (e.key === "Escape") {
                cancelled.current = true;
                setEditing(false);
              }
            }}
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
      <div className="item__actions">
        {editing ? (
          <button type="button" className="icon-button" aria-label="Cancel renaming" onMouseDown={() => {
              cancelled.current = true;
              setEditing(false);
            }}>
            <X size={18} aria-hidden="true" />
          </button>
        ) : (
          <button type="button" className="icon-button" aria-label={`Rename ${row.name}`} disabled={disabled} onClick={startEdit}>
            <Pencil size={18} aria-hidden="true" />
          </button>
        )}
        <button
          type="button"
          className="icon-button icon-button--danger"
          aria-label={`Remove ${row.name}`}
          disabled={disabled}
          onClick={() => void list.remove(row.id)}
        >
          <Trash2 size={18} aria-hidden="true" />
        </button>
      </div>
    </li>
  );
}
