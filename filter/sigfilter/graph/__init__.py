"""Microsoft Graph: sign-in (msal), a small client, and the directory sync."""
