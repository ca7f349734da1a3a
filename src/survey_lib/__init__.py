"""survey_lib: the library behind the executable companion to Plested & Gedeon's survey
"Deep transfer learning for image classification".

Subpackages: :mod:`survey_lib.data`, :mod:`survey_lib.models`, :mod:`survey_lib.transfer`,
:mod:`survey_lib.train`, :mod:`survey_lib.runner`, :mod:`survey_lib.regularizers`,
:mod:`survey_lib.transferability`, :mod:`survey_lib.stats`.
"""

__version__ = "0.1.0"
