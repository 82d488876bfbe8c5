// On the login page the session is over (logged out, timed out or never begun): make sure
// no unlocked key outlives it.
import { forgetKey } from './keyring_client.js';

forgetKey();
