from .tedloc_decoder import TeDLocDecoder

__all__ = ['TeDLocDecoder']
