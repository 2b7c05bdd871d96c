"""Build an 11-class kimchi photo classifier with fastai: a deep-learning course whose notebooks are a tested library

Modules:

- `kimchi_course.core`: Smoke mode on a CPU, full mode on a GPU; the eleven kimchi classes; one way to build a learner, to make a folder safely and to read a command line: the small core that every chapter imports."""

__version__ = "0.1.0"
