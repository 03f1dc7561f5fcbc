"""The front doors: the `vlmtune <command>` dispatcher (`cli`), the data commands (`validate`, `preview`), the web UI
(`webui/`, which runs the real commands as subprocesses) and the demos (`demo`, `demo_grpo`, `demo_compose`).
The top layer: may import anything below (methods, serving, core, registry, data, bottom); nothing imports it,
except the `if __name__ == "__main__":` lines of command modules, which hand `python -m vlmtune.<module>` to
`cli.main` for its one-line errors.
"""
