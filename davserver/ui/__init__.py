"""The file manager page for browsers (issue 17).

A page and its static assets (`static/`), served for GET of a collection by a browser. The page
speaks only the HTTP interface every client has (PROPFIND, PUT, MKCOL, MOVE, COPY, DELETE, the
JSON batch and `?zip`); nothing here reaches the provider except to say whether the user may
write.
"""
