"""Integer-exact quantization-aware training: ``prepare`` gives a torch module whose forward
pass computes exactly the integers edgeq deploys (straight-through gradients); ``edgeq.build``
of that module emits them."""
from .module import QATModule
from .prepare import prepare

__all__ = ["QATModule", "prepare"]
