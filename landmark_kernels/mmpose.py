"""Optional mmpose integration: registers our modules in mmpose's MODELS registry.

With mmpose installed, a config uses our losses through its `custom_imports`:

    custom_imports = dict(imports=["landmark_kernels.mmpose"], allow_failed_imports=False)
    model = dict(..., head=dict(..., loss=dict(type="LKAdaptiveWingLoss", use_target_weight=True)))

Every module of `landmark_kernels.nn` is registered as "LK" + its class name, so mmpose's own
modules of the same name stay as they are. Importing this module registers them when mmpose
imports; `register_modules(registry)` does it for any mmengine-style registry.
"""

import torch

from . import nn

PREFIX = "LK"


def modules():
    """{registered name: class} for every nn.Module defined in landmark_kernels.nn."""
    return {PREFIX + name: cls for name, cls in vars(nn).items()
            if isinstance(cls, type) and issubclass(cls, torch.nn.Module)
            and cls.__module__ == nn.__name__ and not name.startswith("_")}


def register_modules(registry=None):
    """Register our modules in `registry` (default: mmpose.registry.MODELS); returns it.
    Re-registering replaces the previous entry (force=True), so importing twice is harmless."""
    if registry is None:
        from mmpose.registry import MODELS as registry
    for name, cls in modules().items():
        registry.register_module(name=name, module=cls, force=True)
    return registry


try:
    import mmpose.registry  # noqa: F401
except ImportError:  # mmpose (and mmcv) absent: register_modules(registry) still works
    pass
else:
    register_modules()
