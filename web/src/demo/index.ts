export { App } from "./app";
export { DEV_USERS, type DevUser, type Session } from "./session";
