"""Device models: how NVM devices hold weights, as a registry (one module per physical effect).

`stack_of(device_config)` (a `DeviceStack`) composes the models named in `device.model`; every part of the library
that draws or reasons about device errors (chips, noise-injection training, SWIM, NFT, TSB
fine-tuning, write-verify and mapping cost) goes through it. Adding a model: one module here that
subclasses `DeviceModel` and calls `register_device`, plus its test.
"""
from tsblib.devices.base import (DEVICES, DeviceModel, DeviceSpec, DeviceStack, DeviceState, Phase,
                                 all_devices, check_device, check_sigma, get_device, params_of,
                                 register_device, stack_of, train_stack_of)
from tsblib.devices.bitslicer import BitSlicer, Sliced

__all__ = ["DEVICES", "BitSlicer", "DeviceModel", "DeviceSpec", "DeviceStack", "DeviceState",
           "Sliced", "Phase", "all_devices", "check_device", "check_sigma", "get_device",
           "params_of", "register_device", "stack_of", "train_stack_of"]
