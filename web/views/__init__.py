"""The console's pages and the public status page: server-rendered templates, a small script
for live refresh, inline SVG charts; every write goes through the apps' actions."""
