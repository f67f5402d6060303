"""The sizes and names a synthetic district is drawn from: realistic ratios (about 650
students per school, 15 per teacher, 25 per class), school levels and their subjects."""

from __future__ import annotations

import numpy as np

HORIZON_DAYS = 730  # churn events are spread over this many days after EPOCH
STUDENTS_PER_SCHOOL = 650
STUDENTS_PER_TEACHER = 15
CLASS_SIZE = 25

GIVEN = np.array(
    [
        "Ava",
        "Ben",
        "Chloe",
        "Daniel",
        "Emma",
        "Felix",
        "Grace",
        "Hugo",
        "Isla",
        "Jack",
        "Kai",
        "Lena",
        "Mateo",
        "Nora",
        "Omar",
        "Priya",
        "Quinn",
        "Ravi",
        "Sofia",
        "Theo",
        "Uma",
        "Victor",
        "Willa",
        "Xavier",
        "Yara",
        "Zane",
    ]
)
FAMILY = np.array(
    [
        "Garcia",
        "Smith",
        "Nguyen",
        "Johnson",
        "Patel",
        "Brown",
        "Kim",
        "Lopez",
        "Williams",
        "Chen",
        "Davis",
        "Martinez",
        "Wilson",
        "Anderson",
        "Thomas",
        "Taylor",
        "Moore",
        "Jackson",
        "Lee",
        "Harris",
        "Clark",
        "Lewis",
        "Walker",
        "Young",
        "Allen",
        "King",
    ]
)
GRADES = ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]
TRANSFERS_AT_ROLLOVER = 0.02  # of the district's students, arriving at each rollover
LEVELS = {  # school level -> (grades, slots per semester)
    "elementary": (["KG", "01", "02", "03", "04", "05"], 4),
    "middle": (["06", "07", "08"], 6),
    "high": (["09", "10", "11", "12"], 7),
}
SUBJECTS = {
    "elementary": ["Homeroom", "Art", "Music", "Physical Education"],
    "middle": ["Mathematics", "English", "Science", "Social Studies", "Physical Education", "Art"],
    "high": [
        "Algebra",
        "English",
        "Biology",
        "History",
        "Physical Education",
        "Spanish",
        "Computer Science",
    ],
}
GRADE_LEVEL = [level for level, (grades, _) in LEVELS.items() for _ in grades]
