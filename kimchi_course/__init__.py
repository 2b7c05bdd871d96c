"""Build an 11-class kimchi photo classifier with fastai: a deep-learning course whose notebooks are a tested library"""

__version__ = "0.1.0"
