"""``streamlit run streamlit_app.py`` from a checkout: the explorer page lives in the package.

The page is :mod:`metrics_toolkit.explorer.app` (what ``metrics-toolkit explore`` serves, from
an installed wheel too); this file only runs it.
"""

from metrics_toolkit.explorer.app import main

main()
