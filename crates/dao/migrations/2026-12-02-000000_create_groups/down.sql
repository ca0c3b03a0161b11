DROP TABLE group_members;
DROP TABLE `groups`;
