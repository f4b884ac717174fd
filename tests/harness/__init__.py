"""Test harnesses: Selenium helpers, the bad-input corpus and its AppTest driver. Product code never imports these;
bench scripts may."""
