"""The sample browser in Debian's headless Chromium, driven by Playwright."""
