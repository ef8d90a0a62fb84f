"""要素保障监管台: the supervisors' console, server-rendered in Chinese (English by a switch).

It reads through the same query layer as the API, renders with Jinja2 (autoescaped), draws its
charts as SVG on the server, and sends no script at all (`Content-Security-Policy` forbids it), so
nothing is built or downloaded at run time.
"""
