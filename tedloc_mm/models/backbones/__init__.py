from .eva import FrozenEVA

__all__ = ['FrozenEVA']
