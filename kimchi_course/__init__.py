"""Build an 11-class kimchi photo classifier with fastai: a deep-learning course whose notebooks are a tested library

Modules:

- `kimchi_course.core`: Smoke mode on a CPU, full mode on a GPU; the eleven kimchi classes; one way to make a folder safely, the course's architectures and metrics, and its command-line parsers: the small core that every chapter imports."""

__version__ = "0.1.0"
