"""mycli client: configuration, API client, CLI, IPython magics, widget panel and deploy.

`%load_ext mycli_magic` must stay cheap: nothing here imports IPython widgets or boto3 until
a magic actually needs them.
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    from .magic import load_ipython_extension as _load

    _load(ipython)
