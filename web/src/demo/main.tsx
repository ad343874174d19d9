import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app";
import "./styles.css";

const key: unknown = import.meta.env.VITE_CLERK_PUBLISHABLE_KEY;
const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <App clerkPublishableKey={typeof key === "string" && key !== "" ? key : undefined} />
  </StrictMode>,
);
